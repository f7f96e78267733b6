import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");
const alias = { "@": root, "server-only": `${root}/tests/support/empty-module.ts` };
// Workers and launchers that tests start run without network isolation unless a test builds its
// own namespaces and says otherwise: as root, `auto` would install the fence in the machine's own
// namespace (tests/support/root-namespace.ts checks that nothing lands there).
const env = { BULKHEAD_ISOLATION: "off" };

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          env,
          include: ["tests/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "integration",
          env,
          include: ["tests/integration/**/*.test.ts"],
          // One embedded PostgreSQL for the whole run; each test file gets its own database.
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          // Measurements that need the integration harness (npm run bench runs them); not tests.
          name: "bench",
          env,
          include: ["bench/**/*.bench-run.ts"],
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 600_000,
          hookTimeout: 120_000,
          pool: "forks",
          fileParallelism: false,
        },
      },
    ],
  },
});
