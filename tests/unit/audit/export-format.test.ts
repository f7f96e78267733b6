import { describe, expect, it } from "vitest";
import { csvCell } from "@/lib/audit/export/csv";
import { auditFilterInput, filterParams } from "@/lib/audit/filter";
import { likePattern } from "@/lib/audit/search";
import { visible } from "@/lib/audit/view";

describe("csvCell: RFC 4180 quoting and formula neutralisation", () => {
  it.each([
    ["=1+1", `"'=1+1"`],
    ["+1", `"'+1"`],
    ["-1", `"'-1"`],
    ["@SUM(A1)", `"'@SUM(A1)"`],
    ["\t=1", `"'\t=1"`],
    ["\r=1", `"'\r=1"`],
    ["\n=1", `"'\n=1"`],
    ["  =1", `"'  =1"`],
    ["\u00a0=1", `"'\u00a0=1"`],
    ["＝1", `"'＝1"`],
    ["＋1", `"'＋1"`],
    ['=HYPERLINK("x")', `"'=HYPERLINK(""x"")"`],
    ['a "b", c', `"a ""b"", c"`],
    ["two\r\nlines", `"two\r\nlines"`],
    ["a=b", `"a=b"`],
    ["", `""`],
  ])("%j -> %j", (input, out) => {
    expect(csvCell(input)).toBe(out);
  });
  it("treats null as empty", () => {
    expect(csvCell(null)).toBe('""');
  });
});

describe("audit filters", () => {
  it("reads repeated and comma-separated values alike", () => {
    const f = auditFilterInput.parse(filterParams(new URLSearchParams("outcome=deny,hold&outcome=allow&service=github&q=%20vol_%20")));
    expect(f.outcome).toEqual(["deny", "hold", "allow"]);
    expect(f.service).toEqual(["github"]);
    expect(f.q).toBe("vol_");
  });
  it("reads a bare date and a datetime-local value as UTC", () => {
    const f = auditFilterInput.parse({ from: "2026-12-01", to: "2026-12-01T09:30" });
    expect(f.from!.toISOString()).toBe("2026-12-01T00:00:00.000Z");
    expect(f.to!.toISOString()).toBe("2026-12-01T09:30:00.000Z");
  });
  it("escapes LIKE wildcards in search text", () => {
    expect(likePattern("50%_off\\")).toBe("%50\\%\\_off\\\\%");
  });
});

describe("visible(): agent text cannot hide or reorder itself", () => {
  it("shows bidi overrides, zero-width and control characters as escapes", () => {
    expect(visible("invoice\u202Efdp.exe")).toBe("invoice\\u202efdp.exe");
    expect(visible("a\u200Bb\u0000c\nd\u2066")).toBe("a\\u200bb\\u0000c\\u000ad\\u2066");
    expect(visible("<img src=x onerror=alert(1)>")).toBe("<img src=x onerror=alert(1)>"); // left to React's escaping
  });
});
