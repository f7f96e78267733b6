import Link from "next/link";
import { formatTime } from "@/components/format";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { Badge } from "@/components/ui/badge";
import { Table, Td } from "@/components/ui/table";
import type { ActionResult } from "@/lib/http/action";
import { describeLimits, isRecordedLimits } from "@/lib/sandboxes/limits";

export interface SandboxRow {
  id: string;
  name: string;
  kind: string;
  addresses: string;
  blockedAttempts: number;
  createdAt: Date;
  removedAt: Date | null;
  removedReason: string | null;
  /** As recorded by the launcher (RecordedLimits); null for external sandboxes. */
  limits?: unknown;
  task: { id: string; purpose: string; agent: { id: string; name: string } };
}

type StopAction = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

/** Sandboxes with their task, agent, addresses, start, blocked attempts and (for admins) Stop. */
export function SandboxTable({ sandboxes, stop }: { sandboxes: SandboxRow[]; stop: StopAction | null }) {
  return (
    <Table label="Sandboxes" head={["Sandbox", "Task", "Agent", "Address", "Started", "Blocked attempts", ""]}>
      {sandboxes.map((s) => (
        <tr key={s.id} data-testid="sandbox-row">
          <Td>
            <span className="font-mono text-xs">{s.name}</span>
            <span className="ml-2">
              <Badge tone={s.kind === "external" ? "slate" : "green"}>{s.kind}</Badge>
            </span>
            {isRecordedLimits(s.limits) ? (
              <p className="text-xs text-slate-500" data-testid="sandbox-limits">
                {describeLimits(s.limits)}
                {s.limits.enforcedBy === "off" ? " (memory and process limits turned off)" : ` (${s.limits.enforcedBy})`}
              </p>
            ) : null}
            {s.removedAt ? <p className="text-xs text-slate-500">removed {formatTime(s.removedAt)}{s.removedReason ? `: ${s.removedReason}` : ""}</p> : null}
          </Td>
          <Td>
            <Link href={`/tasks/${s.task.id}`} className="text-brand-700 hover:underline">
              {s.task.purpose}
            </Link>
          </Td>
          <Td>
            <Link href={`/agents/${s.task.agent.id}`} className="text-brand-700 hover:underline">
              {s.task.agent.name}
            </Link>
          </Td>
          <Td className="font-mono text-xs">{s.addresses}</Td>
          <Td className="whitespace-nowrap">{formatTime(s.createdAt)}</Td>
          <Td>
            <Badge tone={s.blockedAttempts > 0 ? "red" : "slate"}>{String(s.blockedAttempts)}</Badge>
          </Td>
          <Td>{stop && !s.removedAt ? <SimpleActionButton action={stop} fields={{ id: s.id }} label="Stop" variant="danger" confirm="Stop this sandbox? Its connections close and the command inside is killed." /> : null}</Td>
        </tr>
      ))}
    </Table>
  );
}
