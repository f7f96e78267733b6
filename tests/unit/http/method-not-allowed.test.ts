import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { allowHeader, methodNotAllowedResponse, methodsNotAllowed, ROUTE_METHODS } from "@/lib/http/method-not-allowed";

const ROOT = path.resolve(__dirname, "../../..");

function routeFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? routeFiles(p) : name === "route.ts" ? [p] : [];
  });
}

describe("a method a route does not serve", () => {
  it("is a JSON 405 in the API's error shape, with Allow and no-store", async () => {
    const res = methodNotAllowedResponse("DELETE", ["GET", "POST"]);
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toMatchObject({ error: "method_not_allowed", message: expect.stringContaining("GET and POST") });
    expect(allowHeader(["POST"])).toBe("POST, OPTIONS");
    expect(allowHeader(["GET", "DELETE"])).toBe("GET, HEAD, DELETE, OPTIONS");
    const handlers = methodsNotAllowed(["DELETE"]);
    expect(handlers.HEAD(new Request("http://x/", { method: "HEAD" })).status).toBe(405);
    expect(handlers.GET(new Request("http://x/")).headers.get("allow")).toBe("DELETE, OPTIONS");
    const options = methodsNotAllowed(["GET", "POST"]).OPTIONS(new Request("http://x/", { method: "OPTIONS" }));
    expect(options.status).toBe(204);
    expect(options.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
  });

  it("is answered by every route file of the API: each exports every method, those it does not serve from methodsNotAllowed with exactly the ones it does", () => {
    const files = [...routeFiles(path.join(ROOT, "app/api/v1")), ...routeFiles(path.join(ROOT, "app/.well-known"))];
    expect(files.length).toBeGreaterThan(40);
    for (const file of files) {
      const source = readFileSync(file, "utf8");
      const what = path.relative(ROOT, file);
      const served = ROUTE_METHODS.filter((m) => new RegExp(`^export (const|function|async function) ${m}\\b`, "m").test(source));
      const refused = /^export const \{ ([A-Z, ]+) \} = methodsNotAllowed\(\[([^\]]*)\]\);$/m.exec(source);
      expect(served.length, what).toBeGreaterThan(0);
      if (served.length === ROUTE_METHODS.length) continue;
      expect(refused, `${what} answers the methods it does not serve with methodsNotAllowed`).not.toBeNull();
      const names = refused![1]!.split(", ");
      const listed = JSON.parse(`[${refused![2]}]`) as string[];
      expect(listed, `${what}: methodsNotAllowed names what it serves`).toEqual(served);
      expect(names.includes("OPTIONS"), `${what}: OPTIONS answered with the methods served`).toBe(true);
      expect(names.filter((n) => n !== "HEAD" && n !== "OPTIONS").sort(), `${what}: every other method`).toEqual(ROUTE_METHODS.filter((m) => !served.includes(m)).sort());
      expect(names.includes("HEAD"), `${what}: HEAD refused exactly where there is no GET`).toBe(!served.includes("GET"));
    }
  });
});
