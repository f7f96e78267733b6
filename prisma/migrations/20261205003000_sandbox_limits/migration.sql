-- What a local sandbox could take of its machine (docs/isolation.md, "Resource limits"): the size
-- of its tmpfs home and scratch directories, its memory and process limits, and how those were
-- enforced (cgroup v1, cgroup v2, or off). Null for external sandboxes and rows made before.
ALTER TABLE "sandboxes" ADD COLUMN "limits" JSONB;
