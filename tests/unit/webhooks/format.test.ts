import { describe, expect, it } from "vitest";
import { deliveryBody, type DeliveryPayload } from "@/lib/webhooks/format";
import { effectSummary, mostSevereFirst } from "@/lib/approvals/severity";

const PUBLIC = "https://bulkhead.example.test";

function payload(actions: DeliveryPayload["actions"], extra: Partial<DeliveryPayload> = {}): DeliveryPayload {
  return { event: "hold", approvalId: "a1", status: "pending", taskId: "t1", agentId: "g1", method: "POST", url: "https://backboard.railway.com/graphql/v2", actions, ...extra };
}

function slackText(p: DeliveryPayload): string {
  return (JSON.parse(deliveryBody("slack", p, PUBLIC)) as { text: string }).text;
}

const read = (i: number) => ({ service: "railway", environment: "production", resource: `proj_${i}`, operation: "project", effect: "read" });
const drop = { service: "railway", environment: "production", resource: "vol_prod", operation: "volumeDelete", effect: "irreversible" };

describe("Slack approval messages", () => {
  it("an irreversible action after ten harmless reads is listed first, with a count per effect and what was left out", () => {
    const actions = [...Array.from({ length: 11 }, (_, i) => read(i)), drop];
    const text = slackText(payload(actions));
    expect(text).toContain("`volumeDelete` on `vol_prod`");
    expect(text).toContain("12 actions: 1 irreversible, 11 read.");
    expect(text).toContain("…and 2 more on the card.");
    const lines = text.split("\n");
    expect(lines.findIndex((l) => l.includes("volumeDelete"))).toBeLessThan(lines.findIndex((l) => l.includes("proj_0")));
  });

  it("an effect that is not one of Bulkhead's words is shown as unknown and first, never as the agent wrote it", () => {
    const text = slackText(payload([read(1), { ...drop, effect: "read* <!channel>" }]));
    expect(text).toContain("• unknown: `volumeDelete`");
    expect(text).not.toContain("<!channel>");
  });

  it("agent values cannot become links, mentions, formatting, or hide and reorder themselves", () => {
    const resource = "vol_prod\u202E\u200B\u{E0041}\u001b[2J\n*APPROVED* <http://evil.example|Approve> <!here> `x`";
    const text = slackText(payload([{ ...drop, resource }], { url: "https://h.example/<!channel>" }));
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u);
    expect(text).not.toMatch(/\u{E0041}/u);
    expect(text).not.toContain("<http://evil");
    expect(text).not.toContain("<!here>");
    expect(text).not.toContain("<!channel>");
    expect(text).toContain("\\u202e");
    expect(text).toContain("\\u001b[2J");
    // The value stays one code span on one line.
    const line = text.split("\n").find((l) => l.includes("vol_prod"))!;
    expect(line).toContain("\\u000a*APPROVED* &lt;http://evil.example|Approve&gt; &lt;!here&gt; 'x'");
    // The only link is Bulkhead's, to the card.
    expect(text.match(/<[^>]*>/g)).toEqual([`<${PUBLIC}/approvals/a1|Open the approval card>`]);
  });
});

describe("most severe first", () => {
  it("orders by effect, keeps request order within an effect, and counts each effect", () => {
    const a = [{ effect: "read", n: 1 }, { effect: "write", n: 2 }, { effect: "irreversible", n: 3 }, { effect: "read", n: 4 }, { effect: "destructive", n: 5 }];
    expect(mostSevereFirst(a).map((x) => x.n)).toEqual([3, 5, 2, 1, 4]);
    expect(effectSummary(a)).toBe("1 irreversible, 1 destructive, 1 write, 2 read");
  });
});
