import { Badge } from "@/components/ui/badge";

export function AgentStatusBadge({ status }: { status: "active" | "suspended" }) {
  return <Badge tone={status === "active" ? "green" : "red"}>{status}</Badge>;
}
