import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConnectionRegistry } from "@/proxy-worker/proxy/connections";
import { SourceShare } from "@/proxy-worker/proxy/source-share";

/** Enough of a socket for the share and the registry: it says when it closes. */
const fakeSocket = () => Object.assign(new EventEmitter(), { destroyed: false, destroy() {} }) as unknown as Duplex & EventEmitter;

describe("SourceShare", () => {
  it("holds each source to its share of unauthenticated connections: a new one pushes out the source's oldest", () => {
    const share = new SourceShare(2);
    const [a, b, c, d] = [fakeSocket(), fakeSocket(), fakeSocket(), fakeSocket()];
    expect(share.admit(a, "192.0.2.1").evicted).toBeNull();
    expect(share.admit(b, "::ffff:192.0.2.1").evicted).toBeNull();
    // The third from the same source is kept; the oldest (a) goes.
    expect(share.admit(c, "192.0.2.1")).toEqual({ evicted: a, key: "192.0.2.1", open: 2 });
    // Another source is counted on its own; an IPv6 /64 is one source.
    expect(share.admit(fakeSocket(), "192.0.2.2").evicted).toBeNull();
    const v6 = [fakeSocket(), fakeSocket()];
    expect(share.admit(v6[0]!, "2001:db8::1").evicted).toBeNull();
    expect(share.admit(v6[1]!, "2001:db8::2").evicted).toBeNull();
    expect(share.admit(fakeSocket(), "2001:db8::3").evicted).toBe(v6[0]);
    // Authenticating frees a place (idempotent), and so does closing: no one is pushed out then.
    share.authenticated(b);
    share.authenticated(b);
    expect(share.admit(d, "192.0.2.1").evicted).toBeNull();
    c.emit("close");
    expect(share.admit(fakeSocket(), "192.0.2.1").evicted).toBeNull();
    // The evicted socket's own close later changes nothing.
    a.emit("close");
    expect(share.stats()).toEqual({ sources: 3, unauthenticated: 5, evicted: 2 });
    expect(share.admit(fakeSocket(), "192.0.2.1").evicted).toBe(d);
  });

  it("is told by the connection registry when a connection is registered under an owner", () => {
    const share = new SourceShare(1);
    const registry = new ConnectionRegistry({ onOwned: (socket) => share.authenticated(socket) });
    const socket = fakeSocket();
    expect(share.admit(socket, "192.0.2.9").evicted).toBeNull();
    expect(registry.ownerOf(socket)).toBeNull();
    registry.register(socket, { taskId: "task-1", agentId: "agent-1", jti: null });
    expect(registry.ownerOf(socket)).toEqual({ taskId: "task-1", agentId: "agent-1", jti: null });
    // Authenticated, it is no longer the source's to lose.
    expect(share.admit(fakeSocket(), "192.0.2.9").evicted).toBeNull();
  });
});
