import { describe, expect, it } from "vitest";
import { createWebhookInput, WEBHOOK_EVENTS } from "@/lib/webhooks/webhooks";
import { refusedDestinationMessage } from "@/lib/webhooks/destination";
import { changePasswordInput } from "@/lib/auth/change-password";
import { reauthenticateInput } from "@/lib/auth/step-up";
import { emailSchema } from "@/lib/users/users";
import { environmentsSchema } from "@/lib/vault/schemas";

describe("createWebhookInput", () => {
  const base = { name: "sec-team", url: "https://hooks.example.com/x" };

  it("takes each event at most once: a repeated event is refused, never stored (or audited) as many", () => {
    expect(createWebhookInput.safeParse({ ...base, events: ["hold", "hold"] }).success).toBe(false);
    const flood = createWebhookInput.safeParse({ ...base, events: Array(100_000).fill("hold") });
    expect(flood.success).toBe(false);
    expect(flood.error?.issues[0]?.path).toEqual(["events"]);
    expect(createWebhookInput.parse({ ...base, events: [...WEBHOOK_EVENTS] }).events).toEqual([...WEBHOOK_EVENTS]);
    expect(createWebhookInput.parse({ ...base, events: ["decided", "hold"] }).events).toEqual(["decided", "hold"]);
  });
});

describe("a refused webhook URL says what is wrong with it", () => {
  it("a URL too long is said to be too long, not to be no URL (zod gives a later check without a message the schema's own)", () => {
    const long = createWebhookInput.safeParse({ name: "x", url: `https://hooks.example.com/${"a".repeat(5000)}` });
    expect(long.error?.issues.map((i) => i.message)).toEqual(["The URL must be at most 2000 characters."]);
    expect(createWebhookInput.safeParse({ name: "x", url: "ftp://x/" }).error?.issues.map((i) => i.message)).toEqual(["Enter an http(s) URL."]);
  });

  it("only an address outside the public internet speaks of public addresses and of BULKHEAD_WEBHOOK_ALLOWED_NETWORKS", () => {
    const host = refusedDestinationMessage({ code: "invalid_host", reason: '"a..b" is not a valid host name' }, []);
    expect(host).toBe('This URL\'s host cannot be used ("a..b" is not a valid host name). Enter the receiver\'s host name or address.');
    const port = refusedDestinationMessage({ code: "port_forbidden", reason: "port 0 is not a valid TCP port" }, ["10.0.0.0/8"]);
    expect(port).toBe("This URL's port cannot be used (port 0 is not a valid TCP port). Webhooks are never sent to Bulkhead itself.");
    for (const message of [host, port]) expect(message).not.toMatch(/public addresses|ALLOWED_NETWORKS/);
    const local = refusedDestinationMessage({ code: "destination_forbidden", reason: '"intranet" is a single-label name; refused unless an internal service names it' }, []);
    expect(local).toBe('Webhooks are sent to public addresses only ("intranet" is a single-label name). To send webhooks to a receiver on a private network, the machine\'s operator lists it in BULKHEAD_WEBHOOK_ALLOWED_NETWORKS.');
  });
});

describe("a value too long for a field with a message of its own is said to be too long", () => {
  it.each([
    ["a password to change", () => changePasswordInput.safeParse({ currentPassword: "x".repeat(1025), newPassword: "correct horse battery staple", confirm: "correct horse battery staple" }), "A password is at most 1024 characters."],
    ["a password to re-authenticate", () => reauthenticateInput.safeParse({ password: "x".repeat(1025) }), "A password is at most 1024 characters."],
    ["an email", () => emailSchema.safeParse(`${"a".repeat(250)}@example.com`), "An email address is at most 254 characters."],
    ["a credential's environments", () => environmentsSchema.safeParse("staging ".repeat(300)), "The environments are at most 2000 characters."],
  ])("%s", (_what, parse, message) => {
    expect(parse().error?.issues.map((i) => i.message)).toContain(message);
  });
});
