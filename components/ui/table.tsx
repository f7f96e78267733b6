import type { ReactNode } from "react";
import { ScrollFrame } from "./scroll-frame";

/**
 * `label` names the table's frame for assistive technology while the table scrolls sideways: it
 * must differ from the other tables' on the page (two regions of one name cannot be told apart),
 * and should not contain a field's label on the same page (the region would answer to it too).
 */
export function Table({ head, label, children }: { head: string[]; label: string; children: ReactNode }) {
  return (
    <ScrollFrame label={label} className="rounded-lg bg-white shadow-sm ring-1 ring-slate-200">
      <table className="min-w-full divide-y divide-slate-200 text-sm">
        <thead className="bg-slate-50">
          <tr>
            {head.map((h, i) => (
              <th key={i} scope="col" className="px-4 py-2 text-left font-semibold text-slate-700">
                {/* A column of row buttons has no visible heading; a screen reader still hears one. */}
                {h || <span className="sr-only">Actions</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">{children}</tbody>
      </table>
    </ScrollFrame>
  );
}

export function Td({ children, className = "" }: { children: ReactNode; className?: string }) {
  return <td className={`px-4 py-2 align-top ${className}`}>{children}</td>;
}
