import Link from "next/link";
import { auditFilterShape } from "@/lib/audit/filter";
import { EFFECTS } from "@/lib/semantics/types";

export const OUTCOMES = ["allow", "deny", "hold", "approve", "reject", "cancel", "forwarded", "failed"] as const;

type Values = Record<string, string | undefined>;

const input = "mt-1 block w-full rounded-md border-0 px-2 py-1.5 text-sm ring-1 ring-inset ring-slate-300";
const label = "block text-xs font-semibold text-slate-600";

function Text({ name, title, values, placeholder, type = "text" }: { name: string; title: string; values: Values; placeholder?: string; type?: string }) {
  return (
    <label className={label}>
      {title}
      <input className={input} type={type} name={name} defaultValue={values[name] ?? ""} placeholder={placeholder} />
    </label>
  );
}

/**
 * A time filter as its field shows it. A `datetime-local` field holds only `YYYY-MM-DDTHH:MM[:SS[.sss]]`
 * and shows anything else empty, while the filter also takes a bare date and ISO 8601 times with
 * `Z` or an offset (its own message gives `2026-12-01T09:30:00Z` as the example): such a link
 * filtered the page by a time the form did not show, and applying the form again dropped it. A time
 * the filter reads is shown as that instant in UTC; one it refuses is kept as typed, in a text
 * field, beside the message saying what is wrong with it.
 */
function TimeField({ name, title, values }: { name: "from" | "to"; title: string; values: Values }) {
  const raw = values[name] ?? "";
  const parsed = raw === "" ? null : auditFilterShape[name].safeParse(raw);
  if (parsed && !(parsed.success && parsed.data)) return <Text name={name} title={title} values={values} />;
  const local = parsed?.data ? parsed.data.toISOString().replace(/Z$/, "").replace(/\.000$/, "").replace(/:00$/, "") : "";
  return <Text name={name} title={title} values={{ [name]: local }} type="datetime-local" />;
}

function Choice({ name, title, values, options }: { name: string; title: string; values: Values; options: readonly string[] }) {
  const current = values[name] ?? "";
  const extra = current && !options.includes(current) ? [current] : [];
  return (
    <label className={label}>
      {title}
      <select className={input} name={name} defaultValue={current}>
        <option value="">any</option>
        {[...options, ...extra].map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * The Audit page's filters: a plain GET form, so a filtered view is a URL that can be shared,
 * reloaded and exported as it is. Times are UTC, like every time on the page.
 */
export function AuditFilterForm({ values }: { values: Values }) {
  return (
    <form action="/audit" method="get" className="mb-4 rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-label="Filter the audit log">
      <div className="grid grid-cols-2 gap-3 md:grid-cols-4 xl:grid-cols-6">
        <div className="col-span-2 md:col-span-4 xl:col-span-6">
          <Text name="q" title="Search URL, operation, resource, reason" values={values} placeholder="e.g. vol_prod, volumeDelete, /repos/acme" type="search" />
        </div>
        {/* A date and a time need room: two columns each, or the field cuts the time off. */}
        <div className="col-span-2">
          <TimeField name="from" title="From (UTC)" values={values} />
        </div>
        <div className="col-span-2">
          <TimeField name="to" title="To (UTC)" values={values} />
        </div>
        <Text name="agent" title="Agent (name or id)" values={values} />
        <Text name="task" title="Task id" values={values} />
        <Text name="user" title="User (email or id)" values={values} />
        <Text name="type" title="Event type" values={values} placeholder="proxy.* or task.created" />
        <Choice name="outcome" title="Outcome" values={values} options={OUTCOMES} />
        <Choice name="effect" title="Effect" values={values} options={EFFECTS} />
        <Text name="service" title="Service" values={values} placeholder="github" />
        <Text name="environment" title="Environment" values={values} placeholder="production" />
      </div>
      <div className="mt-3 flex gap-2">
        <button type="submit" className="rounded-md bg-brand-600 px-3 py-1.5 text-sm font-semibold text-white hover:bg-brand-700">
          Apply filters
        </button>
        <Link href="/audit" className="rounded-md px-3 py-1.5 text-sm font-semibold text-slate-700 ring-1 ring-inset ring-slate-300 hover:bg-slate-50">
          Clear
        </Link>
      </div>
    </form>
  );
}
