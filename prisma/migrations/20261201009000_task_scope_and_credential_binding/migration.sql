-- Layer 1 stands on its own (docs/identity.md, "Task scope"; docs/vault-and-api.md, "What a
-- credential serves").

-- A task's scope is fixed when it is created and carried as the `scope` claim of its tokens.
-- Tasks created before scopes existed get the empty scope, which allows nothing: their tokens
-- carry no scope claim and are refused anyway, and no scope is invented for them. Tasks live at
-- most a few hours; create a new task with a scope.
ALTER TABLE "tasks" ADD COLUMN "scope" TEXT NOT NULL DEFAULT '';

-- A credential serves one semantic service in the environments it lists. Existing credentials
-- serve nothing (null service, no environments) until an admin declares what they serve
-- (`bulkhead credential bind`, the Services & Credentials page, or the API): a credential whose
-- purpose nobody stated is never injected, rather than injected everywhere.
ALTER TABLE "credentials" ADD COLUMN "service_id" TEXT,
  ADD COLUMN "environments" TEXT NOT NULL DEFAULT '';
