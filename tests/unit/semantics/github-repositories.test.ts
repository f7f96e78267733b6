import { describe, expect, it } from "vitest";
import { classifyRequest, json } from "./support";

const GH = "https://api.github.com";

const judged = (method: string, path: string, body?: unknown) => {
  const result = classifyRequest(method, `${GH}${path}`, body === undefined ? {} : { body: json(body) });
  return result.ok ? result.actions.map((a) => [a.operation, a.effect, a.resource]) : result.code;
};

/**
 * Endpoints that create a repository from another one. A repository generated from a template is
 * public unless the body says `private: true` (GitHub's default is false), so a public copy of a
 * private template exposes its contents as making the template public does.
 */
describe("GitHub: repositories created from a template, forked or created", () => {
  it("generate without private (public by default) is irreversible", () => {
    expect(judged("POST", "/repos/acme/template/generate", { owner: "mallory", name: "copy" })).toEqual([["repos.createUsingTemplate", "irreversible", "acme/template"]]);
  });

  for (const value of [false, "false", "f", 0, null, "no"]) {
    it(`generate with private: ${JSON.stringify(value)} is irreversible`, () => {
      expect(judged("POST", "/repos/acme/template/generate", { owner: "mallory", name: "copy", private: value })).toEqual([["repos.createUsingTemplate", "irreversible", "acme/template"]]);
    });
  }

  it("generate with private: true is a write (the control)", () => {
    expect(judged("POST", "/repos/acme/template/generate", { owner: "acme", name: "copy", private: true })).toEqual([["repos.createUsingTemplate", "write", "acme/template"]]);
  });

  it('generate with private: "true" (a value servers disagree about) is judged public too', () => {
    expect(judged("POST", "/repos/acme/template/generate", { owner: "acme", name: "copy", private: "true" })).toEqual([["repos.createUsingTemplate", "irreversible", "acme/template"]]);
  });

  it("generate under the repository id and in other spellings is the same", () => {
    expect(judged("POST", "/repositories/1296269/generate", { name: "copy" })).toEqual([["repos.createUsingTemplate", "irreversible", "1296269"]]);
    expect(judged("POST", "/Repos/ACME/Template/Generate/", { name: "copy" })).toEqual([["repos.createUsingTemplate", "irreversible", "acme/template"]]);
    expect(judged("POST", "/repos/acme/template/generate.json", { name: "copy" })).toEqual([["repos.createUsingTemplate", "irreversible", "acme/template"]]);
  });

  it("a fork is repos.createFork (write) on the forked repository", () => {
    expect(judged("POST", "/repos/acme/app/forks", { organization: "mallory" })).toEqual([["repos.createFork", "write", "acme/app"]]);
    expect(judged("POST", "/repositories/1296269/forks", {})).toEqual([["repos.createFork", "write", "1296269"]]);
  });

  it("creating a repository is named, for the user or in an organization", () => {
    expect(judged("POST", "/user/repos", { name: "x" })).toEqual([["repos.createForAuthenticatedUser", "write", "/user/repos"]]);
    expect(judged("POST", "/orgs/Acme/repos", { name: "x", visibility: "public" })).toEqual([["repos.createInOrg", "write", "acme"]]);
  });

  it("a transfer stays irreversible", () => {
    expect(judged("POST", "/repos/acme/app/transfer", { new_owner: "mallory" })).toEqual([["repos.transfer", "irreversible", "acme/app"]]);
  });
});

describe("GitHub GraphQL: cloneTemplateRepository, the twin of POST …/generate", () => {
  const clone = (visibility: string) => {
    const query = `mutation { cloneTemplateRepository(input: {repositoryId: "R_tmpl", name: "copy", ownerId: "U_1", visibility: ${visibility}}) { repository { id } } }`;
    const result = classifyRequest("POST", `${GH}/graphql`, { body: json({ query }) });
    return result.ok ? result.actions.map((a) => [a.operation, a.effect, a.resource]) : result.code;
  };
  it("a PUBLIC or INTERNAL copy is irreversible", () => {
    expect(clone("PUBLIC")).toEqual([["cloneTemplateRepository", "irreversible", "R_tmpl"]]);
    expect(clone("INTERNAL")).toEqual([["cloneTemplateRepository", "irreversible", "R_tmpl"]]);
  });
  it("a PRIVATE copy is a write (the control)", () => {
    expect(clone("PRIVATE")).toEqual([["cloneTemplateRepository", "write", "R_tmpl"]]);
  });
});


/**
 * `visibility: "internal"` (GitHub Enterprise) shows a private repository to every member of the
 * enterprise, who can read and clone it: as irreversible as making it public, and what
 * cloneTemplateRepository's INTERNAL already is. It used to be a plain `repos.update` write.
 */
describe("GitHub: making a repository internal exposes it like making it public", () => {
  for (const [method, path] of [["PATCH", "/repos/acme/app"], ["POST", "/repos/acme/app"], ["PATCH", "/repositories/1296269"], ["PATCH", "/Repos/Acme/App/"]] as const) {
    it(`${method} ${path} with visibility: "internal" is irreversible`, () => {
      const result = judged(method, path, { visibility: "internal" });
      expect(Array.isArray(result) && result.map(([operation, effect]) => [operation, effect])).toEqual([["repos.update", "irreversible"]]);
    });
  }
  it('"Internal", " internal" and a wrapped {"repository": {"visibility": "internal"}} are irreversible too', () => {
    for (const body of [{ visibility: "Internal" }, { visibility: " internal" }, { repository: { visibility: "internal" } }]) {
      expect(judged("PATCH", "/repos/acme/app", body)).toEqual([["repos.update", "irreversible", "acme/app"]]);
    }
  });
  it('visibility: "private" stays a write (the control)', () => {
    expect(judged("PATCH", "/repos/acme/app", { visibility: "private" })).toEqual([["repos.update", "write", "acme/app"]]);
  });
});

/**
 * Giving someone access to a private repository exposes its contents as making it public does:
 * what they read or clone meanwhile is not taken back when the access is.
 */
describe("GitHub: access given to a repository or an organization is irreversible", () => {
  const cases: Array<[string, string, unknown, string, string]> = [
    ["PUT", "/repos/acme/app/collaborators/mallory", { permission: "pull" }, "repos.addCollaborator", "acme/app"],
    ["PUT", "/repositories/42/collaborators/mallory", {}, "repos.addCollaborator", "42"],
    ["POST", "/repos/acme/app/keys", { title: "ci", key: "ssh-ed25519 AAAA", read_only: true }, "repos.createDeployKey", "acme/app"],
    ["PUT", "/orgs/acme/teams/contractors/repos/acme/app", { permission: "pull" }, "teams.addOrUpdateRepoPermissionsInOrg", "acme/app"],
    ["PUT", "/orgs/acme/memberships/mallory", { role: "member" }, "orgs.setMembershipForUser", "acme"],
    ["POST", "/orgs/acme/invitations", { email: "mallory@example.com" }, "orgs.createInvitation", "acme"],
  ];
  for (const [method, path, body, operation, resource] of cases) {
    it(`${method} ${path}`, () => {
      expect(judged(method, path, body)).toEqual([[operation, "irreversible", resource]]);
    });
  }

  it("taking access away stays what it was (a destructive delete by method)", () => {
    expect(judged("DELETE", "/repos/acme/app/collaborators/mallory")).toEqual([["repos.other", "destructive", "acme/app"]]);
  });
});
