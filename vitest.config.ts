import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");
const alias = { "@": root, "server-only": `${root}/tests/support/empty-module.ts` };
// Workers and launchers that tests start run without network isolation unless a test builds its
// own namespaces and says otherwise: as root, `auto` would install the fence in the machine's own
// namespace (tests/support/root-namespace.ts checks that nothing lands there).
const env = { BULKHEAD_ISOLATION: "off" };

/**
 * Integration files that assert a bound of a few seconds or less on wall time (a connection closed
 * within a second of a change, a freeze noticed within two), or that flood the database pool: the
 * project "integration-serial" runs them one at a time once the other files, which run two at a
 * time, are done. `npm run test:integration` runs both projects.
 */
const SERIAL_INTEGRATION = [
  "tests/integration/auth/sign-in-throttle.test.ts",
  "tests/integration/identity/tasks-tokens.test.ts",
  "tests/integration/isolation/sandbox-traffic.test.ts",
  "tests/integration/proxy/database-outages.test.ts",
  "tests/integration/audit/chain-watchdog.test.ts",
  "tests/integration/replay/interrupted.test.ts",
  "tests/integration/proxy/hold-async.test.ts",
  "tests/integration/proxy/kill-switch-connections.test.ts",
  "tests/integration/proxy/kill-switch-holds.test.ts",
  "tests/integration/proxy/propagation.test.ts",
  "tests/integration/proxy/token-scope.test.ts",
  "tests/integration/worker/policy-store.test.ts",
];

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
          exclude: [...configDefaults.exclude, ...SERIAL_INTEGRATION],
          // One embedded PostgreSQL for the whole run; each test file gets its own database, its
          // own ports (from the OS) and its own namespace names, so two files run at once.
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
          maxWorkers: 2,
        },
      },
      {
        resolve: { alias },
        test: {
          // The files whose assertions bound how long something takes in wall time: one at a
          // time, after the parallel files, so no other test file competes for the CPU.
          name: "integration-serial",
          env,
          include: SERIAL_INTEGRATION,
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
          maxWorkers: 1,
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
