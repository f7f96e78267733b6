import { visible } from "@/lib/audit/view";
import { effectSummary, mostSevereFirst } from "@/lib/approvals/severity";

/**
 * What a webhook receives. `json`: Bulkhead's payload plus a link to the approval card. `slack`:
 * a Slack incoming-webhook message. Either way the link only opens the card: deciding needs a
 * signed-in approver (and step-up for irreversible actions), never the link alone. Values from
 * the agent's request are escaped for Slack's mrkdwn and set in code spans, so a URL or
 * operation cannot become a link, a mention or a sentence of Bulkhead's; control, bidirectional
 * and invisible characters are shown as \u escapes (`visible`). The message lists the actions
 * most severe first under a count per effect, and says how many it left out: the agent chooses
 * their number and order, and must not push an irreversible one past the cut.
 */
export interface DeliveryPayload {
  event: string;
  approvalId: string;
  status: string;
  taskId: string;
  agentId: string;
  method: string;
  url: string;
  actions?: Array<{ service?: string; environment?: string; resource?: string; operation?: string; effect?: string }>;
  expiresAt?: string;
  cancelReason?: string | null;
  at?: string;
}

const EFFECT_WORDS = new Set(["read", "write", "destructive", "irreversible"]);

const HEADLINE: Record<string, string> = {
  hold: "A request is waiting for approval",
  decided: "A held request was decided",
  expired: "A held request timed out (refused)",
  cancelled: "A held request was cancelled (nothing forwarded)",
};

/** Slack mrkdwn escaping, plus no backticks (they would end the code span). */
function slackData(value: unknown): string {
  const text = visible(String(value ?? ""))
    .slice(0, 300)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/`/g, "'");
  return `\`${text}\``;
}

const SLACK_ACTIONS = 10;

export function cardUrl(publicUrl: string, approvalId: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/approvals/${approvalId}`;
}

export function deliveryBody(format: string, payload: DeliveryPayload, publicUrl: string): string {
  const link = cardUrl(publicUrl, payload.approvalId);
  if (format !== "slack") return JSON.stringify({ ...payload, cardUrl: link });
  const all = mostSevereFirst((payload.actions ?? []).map((a) => ({ ...a, effect: EFFECT_WORDS.has(a.effect ?? "") ? a.effect! : "unknown" })));
  const actions = all.slice(0, SLACK_ACTIONS).map((a) => `• ${a.effect}: ${slackData(a.operation)} on ${slackData(a.resource)} (${slackData(a.service)}, ${slackData(a.environment)})`);
  const lines = [
    `*${HEADLINE[payload.event] ?? "Approval event"}* (status: ${payload.status})`,
    `Request (from the agent): ${slackData(payload.method)} ${slackData(payload.url)}`,
    ...(all.length > 0 ? [`${all.length} action${all.length === 1 ? "" : "s"}: ${effectSummary(all)}.${all.length > SLACK_ACTIONS ? ` The ${SLACK_ACTIONS} most severe:` : ""}`] : []),
    ...actions,
    ...(all.length > SLACK_ACTIONS ? [`…and ${all.length - SLACK_ACTIONS} more on the card.`] : []),
    `<${link}|Open the approval card> to read the whole request and decide (sign-in required).`,
  ];
  return JSON.stringify({ text: lines.join("\n") });
}
