/**
 * GitHub's REST API (api.github.com) plus its GraphQL endpoint at /graphql.
 * Resources are `owner/repo`, lower-cased: GitHub treats owner and repository names
 * case-insensitively, so `ACME/App` must not slip past a rule written for `acme/app`.
 */
import type { RestRouteInput, ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

const repo = "{owner}/{repo}";
const R = "/repos/{owner}/{repo}";
/**
 * GitHub serves every repository endpoint under `/repositories/{id}` too (undocumented but
 * supported: its own pagination links and renamed-repository redirects use it), so
 * `DELETE /repositories/123` deletes the repository like `DELETE /repos/acme/app`. Each route
 * under `/repos/{owner}/{repo}` is repeated there with the same operation and effect; the
 * resource is the numeric id (the name is not in the request), as a GraphQL node id is.
 */
const BY_ID = "/repositories/{repository_id}";
function alsoById(routes: RestRouteInput[]): RestRouteInput[] {
  const byId = routes
    .filter((route) => route.path === R || route.path.startsWith(`${R}/`))
    .map((route) => ({ ...route, path: BY_ID + route.path.slice(R.length), resource: "{repository_id}" }));
  return [...routes, ...byId];
}

/**
 * GitHub's REST API accepts POST wherever it accepts PATCH ("PATCH is a relatively new and
 * uncommon HTTP verb, so resource endpoints also accept POST requests", API v3 documentation):
 * `POST /repos/{o}/{r}` with `{"private": false}` makes the repository public like the PATCH.
 * So every PATCH route lists POST too; none of their paths has a POST of its own.
 */
const PATCH = ["PATCH", "POST"];

export const github: ServiceDescriptorInput = {
  id: "github",
  title: "GitHub",
  hosts: ["api.github.com"],
  scheme: "https",
  protocol: "rest",
  rest: {
    caseInsensitive: true,
    // GitHub reads path parameters from the path; bodies use the same names for other things
    // (`POST …/generate` takes the new repository's `owner` and `name`).
    bodyNamesPathParameters: false,
    routes: alsoById([
      { method: "DELETE", path: R, operation: "repos.delete", effect: "irreversible", resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/transfer`, operation: "repos.transfer", effect: "irreversible", resource: repo, resourceKind: "repository" },
      // A new repository from a template carries the template's contents; it is public unless the
      // body says private: true (GitHub's default is false), and a public copy of a private
      // template exposes it as making the template public would. Only an exact private: true is
      // the private copy; a value servers disagree about is judged both ways (the stricter wins).
      { method: "POST", path: `${R}/generate`, operation: "repos.createUsingTemplate", effect: "write", when: { private: true }, resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/generate`, operation: "repos.createUsingTemplate", effect: "irreversible", resource: repo, resourceKind: "repository" },
      // A fork copies the repository under another owner; a private repository's fork stays private.
      { method: "POST", path: `${R}/forks`, operation: "repos.createFork", effect: "write", resource: repo, resourceKind: "repository" },
      // Making a private repository public cannot be taken back: its contents have been exposed.
      // So is making it internal (GitHub Enterprise): every member of the enterprise can then read
      // and clone it, as cloneTemplateRepository's INTERNAL below.
      { method: PATCH, path: R, operation: "repos.update", effect: "irreversible", when: { visibility: "public" }, resource: repo, resourceKind: "repository" },
      { method: PATCH, path: R, operation: "repos.update", effect: "irreversible", when: { visibility: "internal" }, resource: repo, resourceKind: "repository" },
      { method: PATCH, path: R, operation: "repos.update", effect: "irreversible", when: { private: false }, resource: repo, resourceKind: "repository" },
      { method: PATCH, path: R, operation: "repos.update", effect: "write", resource: repo, resourceKind: "repository" },
      // A forced ref update rewrites history; the old commits may be unrecoverable.
      { method: PATCH, path: `${R}/git/refs/{ref+}`, operation: "git.refs.forceUpdate", effect: "irreversible", when: { force: true }, resource: repo, resourceKind: "repository" },
      { method: PATCH, path: `${R}/git/refs/{ref+}`, operation: "git.refs.update", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "DELETE", path: `${R}/git/refs/{ref+}`, operation: "git.refs.delete", effect: "destructive", resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/git/refs`, operation: "git.refs.create", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "DELETE", path: `${R}/branches/{branch}/protection`, operation: "repos.deleteBranchProtection", effect: "destructive", resource: repo, resourceKind: "repository" },
      { method: "PUT", path: `${R}/branches/{branch}/protection`, operation: "repos.updateBranchProtection", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "PUT", path: `${R}/pulls/{pull_number}/merge`, operation: "pulls.merge", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "PUT", path: `${R}/contents/{path+}`, operation: "repos.createOrUpdateFileContents", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "DELETE", path: `${R}/contents/{path+}`, operation: "repos.deleteFile", effect: "destructive", resource: repo, resourceKind: "repository" },
      { method: "DELETE", path: `${R}/releases/{release_id}`, operation: "repos.deleteRelease", effect: "destructive", resource: repo, resourceKind: "repository" },
      { method: "GET", path: R, operation: "repos.get", effect: "read", resource: repo, resourceKind: "repository" },
      { method: "GET", path: `${R}/issues`, operation: "issues.list", effect: "read", resource: repo, resourceKind: "repository" },
      { method: "GET", path: `${R}/issues/{issue_number}`, operation: "issues.get", effect: "read", resource: repo, resourceKind: "repository" },
      { method: "GET", path: `${R}/issues/{issue_number}/comments`, operation: "issues.listComments", effect: "read", resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/issues`, operation: "issues.create", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/issues/{issue_number}/comments`, operation: "issues.createComment", effect: "write", resource: repo, resourceKind: "repository" },
      { method: "GET", path: `${R}/pulls`, operation: "pulls.list", effect: "read", resource: repo, resourceKind: "repository" },
      { method: "GET", path: `${R}/pulls/{pull_number}`, operation: "pulls.get", effect: "read", resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/pulls`, operation: "pulls.create", effect: "write", resource: repo, resourceKind: "repository" },
      // A new, empty repository (public unless the body says otherwise): nothing is exposed yet.
      { method: "POST", path: "/user/repos", operation: "repos.createForAuthenticatedUser", effect: "write", resourceKind: "repository" },
      { method: "POST", path: "/orgs/{org}/repos", operation: "repos.createInOrg", effect: "write", resource: "{org}", resourceKind: "organization" },
      { method: "DELETE", path: "/orgs/{org}", operation: "orgs.delete", effect: "irreversible", resource: "{org}", resourceKind: "organization" },
      // The same under the organization's id (GitHub's own pagination links use /organizations/{id}).
      { method: "DELETE", path: "/organizations/{org_id}", operation: "orgs.delete", effect: "irreversible", resource: "{org_id}", resourceKind: "organization" },
      // Access given to someone: a collaborator, a deploy key (a key that reads the repository from
      // anywhere), a team, a member of the organization (base permissions reach its private and
      // internal repositories). Taking it away later does not take back what was read or cloned
      // meanwhile, so each is irreversible, as making the repository public is.
      { method: "PUT", path: `${R}/collaborators/{username}`, operation: "repos.addCollaborator", effect: "irreversible", resource: repo, resourceKind: "repository" },
      { method: "POST", path: `${R}/keys`, operation: "repos.createDeployKey", effect: "irreversible", resource: repo, resourceKind: "repository" },
      { method: "PUT", path: "/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}", operation: "teams.addOrUpdateRepoPermissionsInOrg", effect: "irreversible", resource: repo, resourceKind: "repository" },
      { method: "PUT", path: "/orgs/{org}/memberships/{username}", operation: "orgs.setMembershipForUser", effect: "irreversible", resource: "{org}", resourceKind: "organization" },
      { method: "POST", path: "/orgs/{org}/invitations", operation: "orgs.createInvitation", effect: "irreversible", resource: "{org}", resourceKind: "organization" },
      { method: "PUT", path: "/orgs/{org}/outside_collaborators/{username}", operation: "orgs.convertMemberToOutsideCollaborator", effect: "write", resource: "{org}", resourceKind: "organization" },
      // Anything else under a repository: effect by method, resource still owner/repo.
      { method: "*", path: `${R}/{rest+}`, operation: "repos.other", resource: repo, resourceKind: "repository" },
    ]),
  },
  graphql: {
    paths: ["/graphql"],
    resourceArgs: ["repositoryId", "refId", "id", "issueId", "pullRequestId"],
    fields: [
      { name: "updateRef", effect: "irreversible", when: { "input.force": true }, resourceArg: "input.refId", resourceKind: "ref" },
      { name: "updateRefs", effect: "irreversible", resourceArg: "input.repositoryId", resourceKind: "repository" },
      // The GraphQL twin of POST …/generate: a copy of the template, public unless visibility is
      // PRIVATE (INTERNAL shows it to the whole enterprise).
      { name: "cloneTemplateRepository", effect: "write", when: { "input.visibility": "PRIVATE" }, resourceArg: "input.repositoryId", resourceKind: "repository" },
      { name: "cloneTemplateRepository", effect: "irreversible", resourceArg: "input.repositoryId", resourceKind: "repository" },
    ],
  },
};
