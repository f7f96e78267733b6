import type { Metadata } from "next";
import { ChangePasswordForm } from "@/components/account/change-password-form";
import { formatTime } from "@/components/format";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { Badge } from "@/components/ui/badge";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { ownSessions, SESSIONS_LISTED } from "@/lib/auth/manage-sessions";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { endOtherSessionsAction, endSessionAction } from "./actions";

export const metadata: Metadata = { title: "Your account" };

/** The signed-in person's own sessions (where each came from, which one is this) and password. */
export default async function AccountPage() {
  const actor = await requirePageActor("read");
  const db = getDb();
  const config = loadAppConfig();
  const [{ sessions, total }, user] = await Promise.all([ownSessions(db, actor), db.user.findUnique({ where: { id: actor.userId }, select: { passwordHash: true } })]);
  // Every live session but this one, listed or not (the list stops at SESSIONS_LISTED).
  const others = total - (sessions.some((s) => s.current) ? 1 : 0);
  const hasPassword = Boolean(user?.passwordHash);
  return (
    <>
      <PageHeader
        title="Your account"
        description={`${actor.email}. A session ends after ${Math.round(config.sessionMaxAgeSeconds / 3600)} hours, or after ${Math.round(config.sessionIdleSeconds / 60)} minutes unused.`}
      />
      <section className="max-w-5xl">
        <div className="mb-2 flex flex-wrap items-center justify-between gap-2">
          <h2 className="font-semibold">Your sessions</h2>
          {others > 0 && actor.sessionId ? (
            <SimpleActionButton action={endOtherSessionsAction} fields={{ keep: actor.sessionId }} label="Sign out everywhere else" variant="danger" confirm={`Sign out ${others} other session${others === 1 ? "" : "s"}?`} />
          ) : null}
        </div>
        <Table label="Your sessions" head={["Signed in", "Last used", "Address", "Browser", "Method", ""]}>
          {sessions.map((s) => (
            <tr key={s.id} data-session-id={s.id}>
              <Td className="whitespace-nowrap">{formatTime(s.createdAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(s.lastSeenAt)}</Td>
              <Td className="font-mono text-xs">{s.ip ?? "unknown"}</Td>
              <Td className="max-w-xs text-xs">
                <span className="block truncate" title={s.userAgent ?? undefined}>
                  {s.userAgent ?? "unknown"}
                </span>
              </Td>
              <Td>{s.authMethod === "oidc" ? "single sign-on" : "password"}</Td>
              <Td>{s.current ? <Badge tone="green">this session</Badge> : <SimpleActionButton action={endSessionAction} fields={{ id: s.id }} label="Sign out" variant="secondary" />}</Td>
            </tr>
          ))}
        </Table>
        {total > sessions.length ? (
          <p className="mt-2 text-sm text-amber-800" data-testid="sessions-not-listed">
            Listed: the {SESSIONS_LISTED} most recently used of your {total} live sessions. Sign out everywhere else ends all {others} others.
          </p>
        ) : null}
        <p className="mt-2 text-xs text-slate-500">Last used is updated at most once a minute.</p>
      </section>
      <section className="mt-8 max-w-3xl">
        <h2 className="mb-2 font-semibold">Password</h2>
        {hasPassword ? (
          <>
            <p className="mb-3 text-sm text-slate-600">Changing it signs out every other session of yours; this one stays signed in.</p>
            <ChangePasswordForm />
          </>
        ) : (
          <p className="text-sm text-slate-600">You sign in through {config.oidc?.name ?? "your identity provider"}: change your password there.</p>
        )}
      </section>
    </>
  );
}
