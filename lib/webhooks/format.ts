/**
 * What a webhook receives. `json`: Bulkhead's payload plus a link to the approval card. `slack`:
 * a Slack incoming-webhook message. Either way the link only opens the card: deciding needs a
 * signed-in approver (and step-up for irreversible actions), never the link alone. Values from
 * the agent's request are escaped for Slack's mrkdwn and set in code spans, so a URL or
 * operation cannot become a link, a mention or a sentence of Bulkhead's.
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

const HEADLINE: Record<string, string> = {
  hold: "A request is waiting for approval",
  decided: "A held request was decided",
  expired: "A held request timed out (refused)",
  cancelled: "A held request was cancelled (nothing forwarded)",
};

/** Slack mrkdwn escaping, plus no backticks (they would end the code span). */
function slackData(value: unknown): string {
  const text = String(value ?? "").slice(0, 300).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/`/g, "'").replace(/[\r\n]+/g, " ");
  return `\`${text}\``;
}

export function cardUrl(publicUrl: string, approvalId: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/approvals/${approvalId}`;
}

export function deliveryBody(format: string, payload: DeliveryPayload, publicUrl: string): string {
  const link = cardUrl(publicUrl, payload.approvalId);
  if (format !== "slack") return JSON.stringify({ ...payload, cardUrl: link });
  const actions = (payload.actions ?? []).slice(0, 10).map((a) => `• ${a.effect ?? "?"}: ${slackData(a.operation)} on ${slackData(a.resource)} (${slackData(a.service)}, ${slackData(a.environment)})`);
  const lines = [
    `*${HEADLINE[payload.event] ?? "Approval event"}* (status: ${payload.status})`,
    `Request (from the agent): ${slackData(payload.method)} ${slackData(payload.url)}`,
    ...actions,
    `<${link}|Open the approval card> to read the whole request and decide (sign-in required).`,
  ];
  return JSON.stringify({ text: lines.join("\n") });
}
