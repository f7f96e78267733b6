#!/usr/bin/env node
// A tiny Prisma generator that writes the schema's DMMF (the parsed data model) to JSON. The
// schema-agreement test compares it with a freshly migrated database, which proves
// schema.prisma and the committed migration SQL agree without Prisma's schema engine.
const { generatorHandler } = require("@prisma/generator-helper");
const fs = require("node:fs");
const path = require("node:path");

generatorHandler({
  onManifest: () => ({ prettyName: "Bulkhead DMMF snapshot", defaultOutput: "../lib/generated/dmmf.json" }),
  onGenerate: async (options) => {
    const out = options.generator.output?.value;
    if (!out) throw new Error("dmmf generator needs an output path");
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify({ datamodel: options.dmmf.datamodel }, null, 2));
  },
});
