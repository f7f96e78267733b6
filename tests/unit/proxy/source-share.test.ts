import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConnectionRegistry } from "@/proxy-worker/proxy/connections";
import { SourceShare } from "@/proxy-worker/proxy/source-share";

/** Enough of a socket for the share and the registry: it says when it closes. */
const fakeSocket = () => Object.assign(new EventEmitter(), { destroyed: false, destroy() {} }) as unknown as Duplex & EventEmitter;

describe("SourceShare", () => {
  it("holds each source to its share of unauthenticated connections; authenticating or closing frees a place", () => {
    const share = new SourceShare(2);
    const [a, b, c] = [fakeSocket(), fakeSocket(), fakeSocket()];
    expect(share.admit(a, "192.0.2.1").admitted).toBe(true);
    expect(share.admit(b, "::ffff:192.0.2.1").admitted).toBe(true);
    expect(share.admit(c, "192.0.2.1")).toEqual({ admitted: false, key: "192.0.2.1", open: 2 });
    // Another source is counted on its own; an IPv6 /64 is one source.
    expect(share.admit(fakeSocket(), "192.0.2.2").admitted).toBe(true);
    expect(share.admit(fakeSocket(), "2001:db8::1").admitted).toBe(true);
    expect(share.admit(fakeSocket(), "2001:db8::2").admitted).toBe(true);
    expect(share.admit(fakeSocket(), "2001:db8::3").admitted).toBe(false);
    share.authenticated(a);
    share.authenticated(a);
    expect(share.admit(c, "192.0.2.1").admitted).toBe(true);
    b.emit("close");
    expect(share.admit(fakeSocket(), "192.0.2.1").admitted).toBe(true);
    expect(share.stats()).toEqual({ sources: 3, unauthenticated: 5, refused: 2 });
  });

  it("is told by the connection registry when a connection is registered under an owner", () => {
    const share = new SourceShare(1);
    const registry = new ConnectionRegistry({ onOwned: (socket) => share.authenticated(socket) });
    const socket = fakeSocket();
    expect(share.admit(socket, "192.0.2.9").admitted).toBe(true);
    expect(share.admit(fakeSocket(), "192.0.2.9").admitted).toBe(false);
    expect(registry.ownerOf(socket)).toBeNull();
    registry.register(socket, { taskId: "task-1", agentId: "agent-1", jti: null });
    expect(registry.ownerOf(socket)).toEqual({ taskId: "task-1", agentId: "agent-1", jti: null });
    expect(share.admit(fakeSocket(), "192.0.2.9").admitted).toBe(true);
  });
});
