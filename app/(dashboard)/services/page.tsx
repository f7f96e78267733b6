import type { Metadata } from "next";
import { AddCredentialForm } from "@/components/credentials/add-credential-form";
import { BindCredentialForm } from "@/components/credentials/bind-credential-form";
import { CredentialRowActions } from "@/components/credentials/credential-row-actions";
import { formatTime } from "@/components/format";
import { EmptyState } from "@/components/ui/empty-state";
import { ListPager } from "@/components/ui/list-pager";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { listCredentialsPage } from "@/lib/vault";
import { YamlForm } from "@/components/services/yaml-form";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { getInventoryYaml } from "@/lib/services/inventory";
import { listCustomServices } from "@/lib/services/services";
import { builtInDescriptors } from "@/lib/semantics/descriptors";
import { addCredentialAction, bindCredentialAction, deleteCredentialAction, deleteServiceAction, rotateCredentialAction, saveInventoryAction, saveServiceAction } from "./actions";

const SERVICE_EXAMPLE = `id: billing
title: Internal billing API
hosts: [billing.internal.example.com]
scheme: https
protocol: rest
rest:
  routes:
    - method: DELETE
      path: /invoices/{id}
      operation: invoices.delete
      effect: irreversible
      resource: "{id}"
proxy:
  internalAddresses: [10.20.0.0/16]
`;

export const metadata: Metadata = { title: "Services & Credentials" };

/** Credentials a page of the list shows (the API's pages hold up to 500). */
const PAGE_SIZE = 100;

export default async function ServicesPage({ searchParams }: { searchParams: Promise<{ cursor?: string }> }) {
  const actor = await requirePageActor("read");
  const db = getDb();
  const { cursor: rawCursor } = await searchParams;
  const cursor = typeof rawCursor === "string" && rawCursor !== "" ? rawCursor : undefined;
  // A page position that is not one is said on the page, never read as the first page.
  const credentialPage = listCredentialsPage(db, actor, { cursor, limit: PAGE_SIZE }).then(
    (page) => ({ credentials: page.items, nextCursor: page.nextCursor, problem: null }),
    (error: unknown) => {
      if (isAppError(error) && error.code === "INVALID_INPUT") return { credentials: [], nextCursor: null, problem: error.userMessage };
      throw error;
    },
  );
  const [{ credentials, nextCursor, problem }, services, inventoryYaml] = await Promise.all([credentialPage, listCustomServices(db, actor), getInventoryYaml(db)]);
  const canWrite = roleCan(actor.role, "credentials:write");
  const canConfigure = roleCan(actor.role, "settings:write");
  return (
    <>
      <PageHeader
        title="Services & Credentials"
        description="Upstream credentials live here, encrypted, and are injected by the proxy for their exact endpoint, only for actions of their service in the environments they serve, inside the task's scope. Agents never see them, and nobody can read a secret back."
      />
      {canWrite ? <AddCredentialForm action={addCredentialAction} /> : null}
      {problem ? (
        <p role="alert" className="mb-4 text-sm text-red-700">
          {problem}
        </p>
      ) : credentials.length === 0 ? (
        <EmptyState title="No credentials stored">No upstream credential has been added yet.</EmptyState>
      ) : (
        <Table label="Credentials" head={["Name", "Endpoint", "Serves", "Header", "Secret", "Rotated", "Last used", ...(canWrite ? ["Actions"] : [])]}>
          {credentials.map((c) => (
            <tr key={c.id} data-testid="credential-row">
              <Td>{c.name}</Td>
              <Td className="font-mono text-xs">{c.service}</Td>
              <Td className="text-xs">
                <span data-testid="credential-serves">{c.serviceId && c.environments.length > 0 ? `${c.serviceId} in ${c.environments.join(", ")}` : "nothing"}</span>
                {c.problem ? <span className="mt-1 block text-amber-800">{c.problem}</span> : null}
                {canWrite ? <BindCredentialForm id={c.id} name={c.name} environments={c.environments} bind={bindCredentialAction} /> : null}
              </Td>
              <Td className="font-mono text-xs">{c.headerTemplate}</Td>
              <Td className="font-mono text-xs">{c.secret}</Td>
              <Td className="whitespace-nowrap">{formatTime(c.rotatedAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(c.lastUsedAt)}</Td>
              {canWrite ? (
                <Td>
                  <CredentialRowActions id={c.id} name={c.name} rotate={rotateCredentialAction} remove={deleteCredentialAction} />
                </Td>
              ) : null}
            </tr>
          ))}
        </Table>
      )}
      {problem ? null : <ListPager base="/services" filters={{}} cursor={cursor} nextCursor={nextCursor} nextLabel="Next credentials" endLabel="Last credential reached." />}

      <section className="mt-10">
        <h2 className="mb-1 font-semibold">Services</h2>
        <p className="mb-3 max-w-3xl text-sm text-slate-600">
          Built in: {builtInDescriptors.map((d) => d.id).join(", ")}. Custom services describe how an API&apos;s operations map to effects (see docs/policy.md);
          one with a built-in&apos;s id replaces it. Hosts no service claims are the service <code>unknown</code>.
        </p>
        {services.length > 0 ? (
          <ul className="mb-4 space-y-3">
            {services.map((svc) => (
              <li key={svc.id} className="rounded-lg bg-white p-4 ring-1 ring-slate-200">
                <div className="mb-2 flex items-center justify-between">
                  <span className="font-medium">{svc.name}</span>
                  {canConfigure ? <SimpleActionButton action={deleteServiceAction} fields={{ name: svc.name }} label="Delete" variant="danger" confirm={`Delete the service ${svc.name}?`} /> : null}
                </div>
                <pre className="overflow-x-auto text-xs">{svc.descriptorYaml}</pre>
              </li>
            ))}
          </ul>
        ) : null}
        {canConfigure ? <YamlForm action={saveServiceAction} name="descriptorYaml" label="Add or replace a service (YAML)" initial="" placeholder={SERVICE_EXAMPLE} rows={14} submit="Save service" testId="service-form" /> : null}
      </section>

      <section className="mt-10 max-w-3xl">
        <h2 className="mb-1 font-semibold">Environment inventory</h2>
        <p className="mb-3 text-sm text-slate-600">Which resources and hosts are staging, production and so on. Anything not listed counts as production.</p>
        {canConfigure ? (
          <YamlForm action={saveInventoryAction} name="inventoryYaml" label="Inventory (YAML)" initial={inventoryYaml} rows={10} submit="Save inventory" testId="inventory-form" sendsBase />
        ) : (
          <pre className="rounded-lg bg-white p-4 text-xs ring-1 ring-slate-200">{inventoryYaml}</pre>
        )}
      </section>
    </>
  );
}
