-- A rotated interception CA reaches running workers with the rest of their snapshot.
CREATE TRIGGER "certificate_authorities_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "certificate_authorities"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

-- Recording when a credential was last used must not make every worker reload its snapshot.
DROP TRIGGER "credentials_notify_policy" ON "credentials";
CREATE TRIGGER "credentials_notify_policy" AFTER INSERT OR DELETE OR UPDATE OF "name", "scheme", "host", "port", "header_template", "secret_sealed" ON "credentials"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();
