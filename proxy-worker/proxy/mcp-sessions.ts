/**
 * MCP sessions belong to the task that opened them.
 *
 * An MCP server over HTTP names a session in its answer to `initialize` (the `Mcp-Session-Id`
 * response header), and the client sends that id with every later request of the session,
 * including the `DELETE` that ends it. Upstream, every task that reaches the server through
 * Bulkhead is the same client: Bulkhead injects the same credential for all of them. So a task
 * holding another task's session id could act inside that session (its subscriptions, its
 * server-side state, its pending requests) or end it, and the server could not tell.
 *
 * The worker therefore remembers which task each session id was handed to (per endpoint: scheme,
 * host and port), and a request carrying a session id that was not handed to its own task is
 * refused with 404, which is what an MCP server answers for a session it does not know: the
 * client starts a new session (`initialize`), as the MCP specification tells it to. So is a
 * session id the worker never saw (given out before it restarted, or forgotten to stay within
 * its bounds): the worker cannot say whose it is.
 *
 * Bounded: at most `maxPerTask` sessions a task (its oldest forgotten first) and `maxTotal` in
 * all (the least recently used forgotten first), each forgotten after `idleMs` unused.
 */
/** The header naming a session, in requests and in the server's answer to `initialize` (lower case, as Node gives it). */
export const MCP_SESSION_HEADER = "mcp-session-id";

export interface McpSessionLimits {
  maxTotal: number;
  maxPerTask: number;
  idleMs: number;
}

const DEFAULT_LIMITS: McpSessionLimits = { maxTotal: 50_000, maxPerTask: 256, idleMs: 24 * 60 * 60 * 1000 };

/** Longest session id remembered (the MCP specification asks for visible ASCII; servers use UUIDs or JWTs). */
export const MAX_SESSION_ID_LENGTH = 1024;

interface Entry {
  taskId: string;
  usedAt: number;
}

export type SessionCheck = "own" | "foreign" | "unknown";

export class McpSessions {
  /** endpoint + "\n" + session id -> owner; Map order is least recently used first. */
  private readonly sessions = new Map<string, Entry>();
  /** The keys of each task's sessions, oldest first. */
  private readonly byTask = new Map<string, Set<string>>();
  private readonly limits: McpSessionLimits;

  constructor(limits: Partial<McpSessionLimits> = {}, private readonly now: () => number = Date.now) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Remembers that `sessionId`, handed out by the server at `endpoint`, is `taskId`'s. A session already another task's stays that task's. */
  bind(endpoint: string, sessionId: string, taskId: string): void {
    if (!usableId(sessionId)) return;
    const key = `${endpoint}\n${sessionId}`;
    const found = this.live(key);
    if (found && found.taskId !== taskId) return;
    if (found) {
      this.touch(key, found);
      return;
    }
    this.sessions.set(key, { taskId, usedAt: this.now() });
    let mine = this.byTask.get(taskId);
    if (!mine) this.byTask.set(taskId, (mine = new Set()));
    mine.add(key);
    while (mine.size > this.limits.maxPerTask) this.forgetKey(mine.values().next().value as string);
    while (this.sessions.size > this.limits.maxTotal) this.forgetKey(this.sessions.keys().next().value as string);
  }

  /** Whose the session is, as `taskId` sees it: its own, another task's, or one nobody here opened. */
  check(endpoint: string, sessionId: string, taskId: string): SessionCheck {
    const key = `${endpoint}\n${sessionId}`;
    const found = this.live(key);
    if (!found) return "unknown";
    if (found.taskId !== taskId) return "foreign";
    this.touch(key, found);
    return "own";
  }

  /** The session ended (the server confirmed a DELETE, or answered 404 for it): forgotten, if it is `taskId`'s. */
  forget(endpoint: string, sessionId: string, taskId: string): void {
    const key = `${endpoint}\n${sessionId}`;
    if (this.sessions.get(key)?.taskId === taskId) this.forgetKey(key);
  }

  private live(key: string): Entry | undefined {
    const found = this.sessions.get(key);
    if (found && this.now() - found.usedAt > this.limits.idleMs) {
      this.forgetKey(key);
      return undefined;
    }
    return found;
  }

  private touch(key: string, entry: Entry): void {
    entry.usedAt = this.now();
    this.sessions.delete(key);
    this.sessions.set(key, entry);
  }

  private forgetKey(key: string): void {
    const entry = this.sessions.get(key);
    if (!entry) return;
    this.sessions.delete(key);
    const mine = this.byTask.get(entry.taskId);
    mine?.delete(key);
    if (mine?.size === 0) this.byTask.delete(entry.taskId);
  }
}

function usableId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_SESSION_ID_LENGTH;
}
