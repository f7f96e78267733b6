import { describe, expect, it } from "vitest";
import { createApiKeyInput } from "@/lib/apikeys/schemas";
import { createUserInput } from "@/lib/users/users";
import { createWebhookInput } from "@/lib/webhooks/webhooks";

/**
 * Free-text names people tell objects apart by, in the dashboard and the audit log: a name that
 * looks like another (a bidi override, a zero-width space, another Unicode form of the same
 * letters) must not be stored.
 */
const SCHEMAS = {
  "API key": (name: string) => createApiKeyInput.safeParse({ name, role: "auditor" }),
  webhook: (name: string) => createWebhookInput.safeParse({ name, url: "https://hooks.example.com/x" }),
  user: (name: string) => createUserInput.safeParse({ email: "someone@example.com", name, role: "auditor" }),
};

const UNSEEN = [
  ["a right-to-left override", "ops\u202Egnp.exe"],
  ["a left-to-right isolate", "ci\u2066-bot"],
  ["a zero-width space", "ci\u200B-bot"],
  ["a zero-width joiner", "ci\u200D-bot"],
  ["a byte order mark", "ci\uFEFF-bot"],
  ["a soft hyphen", "ci\u00AD-bot"],
  ["a line separator", "ci\u2028bot"],
  ["a newline", "ci\nbot"],
  ["an escape sequence", "ci\u001b[31mbot"],
  ["a Hangul filler", "ci\u3164bot"],
] as const;

describe("names that look like other names are refused", () => {
  for (const [what, parse] of Object.entries(SCHEMAS)) {
    it.each(UNSEEN)(`the ${what} name with %s is refused with a sentence naming the field`, (_kind, name) => {
      const result = parse(name);
      expect(result.success, JSON.stringify(name)).toBe(false);
      const issue = result.error!.issues.find((i) => i.path[0] === "name");
      expect(issue?.message).toBe("Name must not contain control, invisible or direction-changing characters, which make names look alike.");
    });

    it(`the ${what} name is stored in NFC, so both spellings of é are one name`, () => {
      const composed = parse("caf\u00e9 deploys");
      const decomposed = parse("cafe\u0301 deploys");
      expect(composed.success && decomposed.success).toBe(true);
      expect((decomposed.data as { name: string }).name).toBe("caf\u00e9 deploys");
      expect((composed.data as { name: string }).name).toBe((decomposed.data as { name: string }).name);
      // Visible non-ASCII text stays allowed.
      expect(parse("Équipe sécurité 東京").success).toBe(true);
    });
  }
});
