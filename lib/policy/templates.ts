/**
 * Starting points for common tasks. Each is plain policy YAML (it must parse; a unit test
 * checks), meant to be copied and edited: replace the example resources with real ones.
 */

export interface PolicyTemplate {
  id: string;
  title: string;
  description: string;
  yaml: string;
}

export const policyTemplates: readonly PolicyTemplate[] = [
  {
    id: "read-only",
    title: "Read-only on one service",
    description: "The task may read anything on Railway, in every environment, and change nothing.",
    yaml: `mode: enforce
unlisted: deny
rules:
  - id: railway-read
    service: railway
    effects: [read]
`,
  },
  {
    id: "staging-write",
    title: "Write to staging, read production",
    description:
      "Reads everywhere on Railway; writes in staging; destructive staging changes wait for a human; production changes are denied.",
    yaml: `mode: enforce
unlisted: deny
rules:
  - id: railway-read
    service: railway
    effects: [read]
  - id: railway-staging-write
    service: railway
    environments: [staging]
    effects: [write]
  - id: railway-staging-destructive
    service: railway
    environments: [staging]
    effects: [destructive, irreversible]
    decision: hold
  - id: railway-production-changes
    service: railway
    environments: [production]
    effects: [write, destructive, irreversible]
    decision: deny
`,
  },
  {
    id: "github-contributor",
    title: "GitHub repository contributor",
    description:
      "Reads, issues, pull requests and pushes on one repository; branch deletion needs approval; deleting the repository, force pushes and visibility changes are denied.",
    yaml: `mode: enforce
unlisted: deny
rules:
  - id: github-no-history-rewrite
    service: github
    operations: [repos.delete, repos.transfer, git.refs.forceUpdate, updateRef, updateRefs]
    decision: deny
  - id: github-read
    service: github
    resources: ["acme/app"]
    effects: [read]
  - id: github-contribute
    service: github
    resources: ["acme/app"]
    operations: ["issues.*", "pulls.*", "git.refs.create", "git.refs.update", "repos.createOrUpdateFileContents"]
    effects: [write]
  - id: github-branch-delete
    service: github
    resources: ["acme/app"]
    operations: [git.refs.delete]
    effects: [destructive]
    decision: hold
`,
  },
  {
    id: "database-read-only",
    title: "Database read-only",
    description:
      "Reads through a SQL-over-HTTP service (here called pg-http). Writes, side-effecting functions, DDL and unparseable SQL are all denied.",
    yaml: `mode: enforce
unlisted: deny
rules:
  - id: db-read
    service: pg-http
    effects: [read]
  - id: db-no-secrets
    service: pg-http
    resources: ["secrets", "*.secrets"]
    decision: deny
`,
  },
  {
    id: "hold-everything",
    title: "Hold everything for approval",
    description: "Every action of every service waits for a human. Useful to watch a new agent before writing real rules.",
    yaml: `mode: enforce
unlisted: hold
rules:
  - id: hold-all
    service: "*"
    effects: [read, write, destructive, irreversible]
    decision: hold
`,
  },
];

export function findTemplate(id: string): PolicyTemplate | undefined {
  return policyTemplates.find((t) => t.id === id);
}
