import { defineConfig } from "@playwright/test";

// Launchers and workers these tests start (`bulkhead start`) run without network isolation: as
// root, `auto` would install the fence in the machine's own namespace (global-setup checks).
process.env.BULKHEAD_ISOLATION ??= "off";

/**
 * Browser end-to-end tests: a real Chromium (Debian's, via executablePath) against the real
 * production build, backed by a real (embedded, throwaway) PostgreSQL that global-setup starts.
 */
export default defineConfig({
  testDir: "tests/e2e",
  globalSetup: "./tests/e2e/support/global-setup.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  reporter: [["list"], ["html", { open: "never", outputFolder: "playwright-report" }]],
  outputDir: "test-results",
  use: {
    baseURL: process.env.E2E_BASE_URL ?? "http://127.0.0.1:3100",
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    },
  },
});
