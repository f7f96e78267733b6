import type { Metadata } from "next";
import { RegisterAgentForm } from "@/components/agents/register-agent-form";
import { PageHeader } from "@/components/ui/page-header";
import { requirePageActor } from "@/lib/auth/current";
import { registerAgentAction } from "../actions";

export const metadata: Metadata = { title: "Register agent" };

export default async function NewAgentPage() {
  const actor = await requirePageActor("agents:write");
  return (
    <>
      <PageHeader title="Register agent" description="Give the agent a name people recognise and a responsible owner." />
      <RegisterAgentForm action={registerAgentAction} defaultOwner={actor.email} />
    </>
  );
}
