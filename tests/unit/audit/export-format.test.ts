import { describe, expect, it } from "vitest";
import { csvCell } from "@/lib/audit/export/csv";
import { auditFilterInput, filterParams } from "@/lib/audit/filter";
import { likePattern } from "@/lib/audit/search";
import { actionsOf, visible } from "@/lib/audit/view";

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

  it("shows the invisible characters outside the bidi and zero-width blocks too: soft hyphen, fillers, variation selectors, tag characters", () => {
    // Tag characters spell a hidden ASCII message ("ok" here) that a person never sees.
    const hidden = "vol_prod\u{E006F}\u{E006B}\u00AD\u3164\uFE0F\u180E\u2061\u034F";
    expect(visible(hidden)).toBe("vol_prod\\u{e006f}\\u{e006b}\\u00ad\\u3164\\ufe0f\\u180e\\u2061\\u034f");
    // ESC and the one-byte CSI (U+009B) start terminal sequences; CR returns to the line's start.
    expect(visible("a\u001b[2Jb\u009b2Kc\rd")).toBe("a\\u001b[2Jb\\u009b2Kc\\u000dd");
  });

  it("keeps line feeds and tabs when asked (a pretty-printed body), never CR or the rest", () => {
    expect(visible("SELECT 1;\n\tDROP\r\u202eX", { keepLines: true })).toBe("SELECT 1;\n\tDROP\\u000d\\u202eX");
    // Ordinary text in any script is left alone.
    expect(visible("Grüße, 東京, עברית, 🙂")).toBe("Grüße, 東京, עברית, 🙂");
  });
});

describe("actionsOf(): an event's actions as a person reads them", () => {
  it("keeps every action, in request order: 150 reads cannot push out the one irreversible action", () => {
    const reads = Array.from({ length: 150 }, (_, i) => ({ service: "pg-http", environment: "production", resource: `t${i}`, operation: "SELECT", effect: "read" }));
    const drop = { service: "pg-http", environment: "production", resource: "invoices", operation: "DROP TABLE", effect: "irreversible" };
    const shown = actionsOf({ actions: [...reads.slice(0, 120), drop, ...reads.slice(120)] });
    expect(shown).toHaveLength(151);
    expect(shown[120]).toEqual(drop);
    expect(shown[0]!.resource).toBe("t0");
    // Few: all of them, as recorded.
    expect(actionsOf({ actions: [drop, reads[0]] })).toEqual([drop, reads[0]]);
  });
});
