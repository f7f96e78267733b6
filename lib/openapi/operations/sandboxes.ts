import { z } from "zod";
import { registerSandboxInput } from "@/lib/sandboxes/sandboxes";
import type { OpenApiOperation } from "../registry";
import { dateTime, nextCursor, nullableDateTime, pageQuery } from "../schemas";

const sandboxSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(["netns", "external"]).meta({ description: "netns: made by `bulkhead sandbox run`; external: isolated elsewhere and registered." }),
  taskId: z.string(),
  task: z.object({ id: z.string(), purpose: z.string(), status: z.string(), expiresAt: dateTime, agent: z.object({ id: z.string(), name: z.string() }) }),
  sourceAddress: z.string().nullable().meta({ description: "IPv4 source address while live; null once removed." }),
  sourceAddressV6: z.string().nullable(),
  addresses: z.string().meta({ description: "The addresses it had (kept after removal)." }),
  instanceId: z.string().nullable(),
  createdBy: z.string().nullable(),
  blockedAttempts: z.number().int().meta({ description: "Packets the fence dropped (escape attempts)." }),
  createdAt: dateTime,
  removedAt: nullableDateTime,
  removedReason: z.string().nullable(),
  limits: z
    .object({
      homeBytes: z.number().int(),
      scratchBytes: z.number().int(),
      memoryBytes: z.number().int().nullable(),
      pids: z.number().int().nullable(),
      enforcedBy: z.string().meta({ description: "cgroup v2, cgroup v1, or off (memory and process limits turned off)." }),
    })
    .nullable()
    .meta({ description: "What a local sandbox could take of its machine (tmpfs sizes in bytes, memory in bytes, processes); null for external sandboxes." }),
});
const sandboxResponse = z.object({ sandbox: sandboxSchema });
const id = { id: "The sandbox's id (uuid)." };

export const sandboxOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/sandboxes",
    operationId: "listSandboxes",
    summary: "List sandboxes (live ones unless state=all)",
    tags: ["sandboxes"],
    permission: "read",
    query: z.object({
      state: z.enum(["live", "all"]).optional().meta({ description: "Default: live." }),
      task: z.string().optional().meta({ description: "Only this task's sandboxes." }),
      ...pageQuery,
    }),
    responses: { 200: { description: "Newest first, a page at a time.", schema: z.object({ sandboxes: z.array(sandboxSchema), nextCursor }) } },
  },
  {
    method: "post",
    path: "/api/v1/sandboxes",
    operationId: "registerSandbox",
    summary: "Bind an externally isolated agent (e.g. a Kubernetes pod's address) to an active task",
    tags: ["sandboxes"],
    permission: "tasks:write",
    body: registerSandboxInput,
    notFound: "`taskId` names no task (`issues` names the field); a task that has ended is a 400.",
    responses: { 201: { description: "The registered sandbox; workers authenticate its address within a second.", schema: sandboxResponse } },
  },
  { method: "get", path: "/api/v1/sandboxes/{id}", operationId: "getSandbox", summary: "Get a sandbox", tags: ["sandboxes"], permission: "read", pathParams: id, responses: { 200: { description: "The sandbox.", schema: sandboxResponse } } },
  {
    method: "delete",
    path: "/api/v1/sandboxes/{id}",
    operationId: "stopSandbox",
    summary: "Stop a sandbox: its address is refused and its connections closed at once; a local sandbox is torn down by its launcher",
    tags: ["sandboxes"],
    permission: "tasks:write",
    pathParams: id,
    responses: { 200: { description: "The stopped sandbox.", schema: sandboxResponse } },
  },
];
