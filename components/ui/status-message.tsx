import Link from "next/link";

/**
 * What the not-found and forbidden pages say. They render inside the dashboard's own <main> when
 * a dashboard page calls notFound() or forbidden(), and on their own for an address outside it:
 * the message is a plain block, and only the page outside the dashboard wraps it in <main>, so a
 * page never has two main landmarks.
 */
export function StatusMessage({ code, title, tone = "brand", children }: { code: string; title: string; tone?: "brand" | "red"; children: string }) {
  return (
    <div className="mx-auto max-w-lg px-6 py-24 text-center">
      <p className={`text-sm font-semibold ${tone === "red" ? "text-red-700" : "text-brand-700"}`}>{code}</p>
      <h1 className="mt-2 text-2xl font-semibold">{title}</h1>
      <p className="mt-2 text-slate-600">{children}</p>
      <Link href="/agents" className="mt-6 inline-block text-brand-700 underline">
        Back to agents
      </Link>
    </div>
  );
}
