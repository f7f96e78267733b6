import { describe, expect, it } from "vitest";
import { requestedPage, safeReturnPath, signInPath } from "@/lib/auth/return-to";

describe("the page to come back to after signing in", () => {
  it.each(["/approvals/0b1c", "/audit?q=vol_prod&type=proxy.*", "/tasks/1/report", "/%09/x"])("%s is a page of the dashboard", (path) => {
    expect(safeReturnPath(path)).toBe(path);
  });

  it.each(["//evil.example", "/\\evil.example", "https://evil.example/", "http:evil", "javascript:alert(1)", " /audit", "/audit page", "/a\tb", "/a\u0000", "/login", "/login?next=/x", "/setup/abc", "/api/v1/me", "/_next/static/x.js", "/", "", "audit", `/${"a".repeat(2001)}`])(
    "%j is not",
    (path) => {
      expect(safeReturnPath(path)).toBeNull();
    },
  );

  it("is not taken from anything but a string", () => {
    expect(safeReturnPath(["/audit"])).toBeNull();
    expect(safeReturnPath(null)).toBeNull();
  });

  it("the sign-in page names it, except the Agents page it goes to anyway", () => {
    expect(signInPath("/audit?q=x y")).toBe("/login");
    expect(signInPath("/audit?q=vol")).toBe("/login?next=%2Faudit%3Fq%3Dvol");
    expect(signInPath("/agents")).toBe("/login");
    expect(signInPath(null)).toBe("/login");
  });

  it("the requested page leaves out Next.js's cache-buster", () => {
    expect(requestedPage(new URL("http://h/tasks?agent=a&_rsc=1x2"))).toBe("/tasks?agent=a");
    expect(requestedPage(new URL("http://h/tasks?_rsc=1"))).toBe("/tasks");
  });
});
