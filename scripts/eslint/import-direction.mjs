// ESLint rule `bulkhead/import-direction`: imports run one way (docs/architecture.md, Folders and
// the import rule). lib/ is what the dashboard and the worker share, so it imports none of the
// folders built on it; the CLI sits on top of everything it launches.
//
// A rule of our own rather than `no-restricted-imports` patterns because a relative specifier
// means nothing without the file it is written in (`../../app/x` leaves lib/ from lib/auth/ but
// not from lib/auth/deep/): each specifier is resolved against its file, `@/` against the root.
// tests/unit/architecture/import-directions.test.ts is an independent second guard with its own
// copy of the table.
import path from "node:path";

/** Which top-level folders each folder may import from. */
const ALLOWED = {
  app: ["app", "components", "lib"],
  components: ["components", "lib"],
  lib: ["lib"],
  "proxy-worker": ["proxy-worker", "lib"],
  cli: ["cli", "lib", "proxy-worker", "replay"],
  replay: ["replay", "lib"],
};
/** Files at the top level that Next.js runs as part of the dashboard. */
const ROOT_FILES = { "instrumentation.ts": "app", "proxy.ts": "app" };

function layerOf(file) {
  if (ROOT_FILES[file]) return ROOT_FILES[file];
  const top = file.split("/")[0];
  return file.includes("/") && Object.hasOwn(ALLOWED, top) ? top : null;
}

/** The repository path a specifier names, or null for a package. */
function resolveSpecifier(from, specifier) {
  if (specifier.startsWith("@/")) return path.posix.normalize(specifier.slice(2));
  if (specifier === "." || specifier === ".." || specifier.startsWith("./") || specifier.startsWith("../")) {
    return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  }
  return null;
}

function literalText(node) {
  if (!node) return null;
  if (node.type === "Literal" && typeof node.value === "string") return node.value;
  if (node.type === "TemplateLiteral" && node.expressions.length === 0) return node.quasis[0].value.cooked;
  if (node.type === "TSLiteralType") return literalText(node.literal);
  return null;
}

export const importDirection = {
  meta: {
    type: "problem",
    docs: { description: "Imports run one way: app -> components -> lib; proxy-worker -> lib; cli -> lib, proxy-worker, replay; replay -> lib." },
    schema: [],
    messages: {
      backwards: "{{from}}/ may not import from {{to}} (\"{{specifier}}\"). Imports run app -> components -> lib; proxy-worker -> lib; cli -> lib, proxy-worker, replay; replay -> lib (docs/architecture.md).",
    },
  },
  create(context) {
    const file = path.relative(context.cwd, context.filename).split(path.sep).join("/");
    const from = layerOf(file);
    if (!from) return {};
    const check = (node) => {
      const specifier = literalText(node);
      if (specifier === null) return;
      const target = resolveSpecifier(file, specifier);
      if (target === null) return;
      const to = layerOf(target) ?? (target.startsWith("..") ? "outside the repository" : target.split("/")[0]);
      if (!ALLOWED[from].includes(to)) context.report({ node, messageId: "backwards", data: { from, to: to.startsWith("outside") ? to : `${to}/`, specifier } });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      TSImportType: (node) => check(node.argument),
      TSExternalModuleReference: (node) => check(node.expression),
      CallExpression: (node) => {
        if (node.callee.type === "Identifier" && node.callee.name === "require") check(node.arguments[0]);
      },
    };
  },
};
