import { Badge } from "@/components/ui/badge";

export function TaskStatusBadge({ status }: { status: string }) {
  const tone = status === "active" ? "green" : status === "revoked" ? "red" : "slate";
  return <Badge tone={tone}>{status}</Badge>;
}
