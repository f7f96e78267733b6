/**
 * Signed PDFs kept for a short while in the dashboard process, so that the browser can download
 * the PDF and its detached signature as two files of the same report. Only the actor who
 * generated one can fetch it; at most 16 are kept, each for 15 minutes.
 */
import { randomUUID } from "node:crypto";
import type { Actor } from "@/lib/auth/actor";
import type { GeneratedReport } from "./generate";

const TTL_MS = 15 * 60_000;
const MAX = 16;
type Entry = { report: GeneratedReport; owner: string; taskId: string; expires: number };
// On globalThis: Next.js bundles the page that generates and the route that serves separately,
// each with its own copy of this module, in one process.
const shared = globalThis as typeof globalThis & { bulkheadReportCache?: Map<string, Entry> };
const cache = (shared.bulkheadReportCache ??= new Map<string, Entry>());

const ownerOf = (actor: Actor) => (actor.kind === "user" ? `user:${actor.userId}` : actor.kind === "api_key" ? `key:${actor.apiKeyId}` : `system:${actor.label}`);

export function keepReport(actor: Actor, report: GeneratedReport): string {
  const now = Date.now();
  for (const [id, e] of cache) if (e.expires <= now) cache.delete(id);
  while (cache.size >= MAX) cache.delete(cache.keys().next().value!);
  const id = randomUUID();
  cache.set(id, { report, owner: ownerOf(actor), taskId: report.report.task.id, expires: now + TTL_MS });
  return id;
}

export function keptReport(actor: Actor, taskId: string, id: string): GeneratedReport | null {
  const e = cache.get(id);
  if (!e || e.expires <= Date.now() || e.owner !== ownerOf(actor) || e.taskId !== taskId) return null;
  return e.report;
}
