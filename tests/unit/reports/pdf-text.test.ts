import { describe, expect, it } from "vitest";
import { pdfText } from "@/lib/reports/pdf";

describe("pdfText: agent text in the signed report shows what it is", () => {
  it("escapes controls, C1, bidi, zero-width, tag characters and the soft hyphen; keeps printable Latin-1", () => {
    expect(pdfText("vol\u00adprod")).toBe("vol\\u00adprod");
    expect(pdfText("a\u001b[2K\u009b\u202e\u200b")).toBe("a\\u001b[2K\\u009b\\u202e\\u200b");
    expect(pdfText("x\u{e0041}")).toBe("x\\ue0041");
    expect(pdfText("Grüße é ÿ")).toBe("Grüße é ÿ");
  });
});
