import Link from "next/link";

export default function Forbidden() {
  return (
    <main className="mx-auto max-w-lg px-6 py-24 text-center">
      <p className="text-sm font-semibold text-red-700">403</p>
      <h1 className="mt-2 text-2xl font-semibold">Your role does not allow this</h1>
      <p className="mt-2 text-slate-600">Ask an admin if you need access.</p>
      <Link href="/agents" className="mt-6 inline-block text-brand-700 underline">
        Back to agents
      </Link>
    </main>
  );
}
