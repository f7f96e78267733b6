import nextCoreWebVitals from "eslint-config-next/core-web-vitals";
import nextTypescript from "eslint-config-next/typescript";
import { importDirection } from "./scripts/eslint/import-direction.mjs";

const config = [
  ...nextCoreWebVitals,
  ...nextTypescript,
  {
    ignores: ["node_modules/**", ".next/**", "dist/**", "lib/generated/**", "next-env.d.ts", "test-results/**", "playwright-report/**", ".data/**", "bench/results/**"],
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
      "no-console": ["warn", { allow: ["warn", "error"] }],
    },
  },
  {
    // Imports run one way (docs/architecture.md); the rule resolves `@/` and relative specifiers.
    plugins: { bulkhead: { rules: { "import-direction": importDirection } } },
    rules: { "bulkhead/import-direction": "error" },
  },
  {
    files: ["scripts/**", "bin/**", "bench/**", "tests/**"],
    rules: { "no-console": "off", "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // Playwright fixtures receive a `use` callback that is not React's `use` hook.
    files: ["tests/e2e/**"],
    rules: { "react-hooks/rules-of-hooks": "off" },
  },
];

export default config;
