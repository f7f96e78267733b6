/**
 * Which top-level fields will the server execute? Parsed with the `graphql` package and checked
 * with its own schema-independent validation rules (fragment cycles, unknown fragments, duplicate
 * names and arguments), then: find the operation the request selects, measure the document
 * against the service's limits, expand fragment spreads and inline fragments at the root of every
 * operation, and report every field under its real name.
 */
import {
  ExecutableDefinitionsRule,
  GraphQLError,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  Kind,
  KnownFragmentNamesRule,
  LoneAnonymousOperationRule,
  NoFragmentCyclesRule,
  UniqueArgumentNamesRule,
  UniqueFragmentNamesRule,
  UniqueInputFieldNamesRule,
  UniqueOperationNamesRule,
  UniqueVariableNamesRule,
  parse,
  validate,
  valueFromASTUntyped,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import { reject, type Rejection } from "@/lib/semantics/types";

export type OperationType = "query" | "mutation" | "subscription";

export interface RootField {
  name: string;
  alias: string | null;
  /** Arguments with variables substituted (defaults applied). */
  args: Record<string, unknown>;
  /**
   * Set on a field selected inside a mutation's root field that takes no arguments (a namespace
   * object: `mutation { admin { deleteProject(id: 1) } }`): the dotted path of the namespace
   * fields above it (`admin`). Such fields run as mutations on servers that nest them.
   */
  namespace?: string;
  /**
   * Set on any other field below the root (under a field that takes arguments, or in a query or
   * subscription): the dotted path of the fields above it (`admin.tenant`). Most are what their
   * parent returns; the classifier judges those that may act on their own (see graphql.ts).
   */
  within?: string;
}

export interface AnalysedOperation {
  type: OperationType;
  name: string | null;
  /** The operation the request selects; the others are judged too (see `analyseDocument`). */
  selected: boolean;
  fields: RootField[];
}

/** Upper bounds on what one document may ask for (per service: `graphql.limits`). */
export interface DocumentLimits {
  maxDepth: number;
  maxAliases: number;
  maxFields: number;
}

const MAX_TOKENS = 50_000;
const MAX_ROOT_FIELDS = 500;
/** Fragments a chain of spreads may pass through (or the service's `maxDepth`, if higher). */
const MAX_FRAGMENT_NESTING = 100;
const RULES = [
  ExecutableDefinitionsRule,
  UniqueOperationNamesRule,
  LoneAnonymousOperationRule,
  UniqueFragmentNamesRule,
  KnownFragmentNamesRule,
  NoFragmentCyclesRule,
  UniqueArgumentNamesRule,
  UniqueInputFieldNamesRule,
  UniqueVariableNamesRule,
];

// The rules above never consult the schema, but `validate` needs one.
const PLACEHOLDER_SCHEMA = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { _: { type: GraphQLString } } }),
});

/**
 * How many fragments a chain of spreads passes through at most (a spread of a fragment that spreads
 * another...), counted without recursion. graphql-js's fragment-cycle rule, the measuring and the
 * root expansion below all recurse once per fragment of a chain: a document of a few thousand
 * fragments each spreading the next (well inside the token limit) cost superlinear time and then
 * overflowed the stack. Spreads of unknown fragments and cycles are left to validation.
 */
function fragmentNesting(doc: DocumentNode): number {
  const spreads = new Map<string, string[]>();
  const roots: string[] = [];
  for (const def of doc.definitions) {
    if (def.kind !== Kind.FRAGMENT_DEFINITION && def.kind !== Kind.OPERATION_DEFINITION) continue;
    const names: string[] = [];
    const sets: SelectionSetNode[] = [def.selectionSet];
    for (let set = sets.pop(); set !== undefined; set = sets.pop()) {
      for (const selection of set.selections) {
        if (selection.kind === Kind.FRAGMENT_SPREAD) names.push(selection.name.value);
        else if (selection.selectionSet) sets.push(selection.selectionSet);
      }
    }
    if (def.kind === Kind.FRAGMENT_DEFINITION) {
      if (!spreads.has(def.name.value)) spreads.set(def.name.value, names);
    } else for (const name of names) roots.push(name);
  }
  // Longest chain from each fragment (memoised; a fragment still being walked counts as 0, which
  // ends a cycle), walked with an explicit stack. Every fragment, spread or not: validation walks
  // the unused ones too.
  const depth = new Map<string, number>();
  let deepest = 0;
  for (const root of [...roots, ...spreads.keys()]) {
    const stack: Array<{ name: string; next: number; best: number }> = [];
    const enter = (name: string) => {
      if (depth.has(name) || !spreads.has(name)) return;
      depth.set(name, 0);
      stack.push({ name, next: 0, best: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const children = spreads.get(top.name)!;
      if (top.next < children.length) {
        const child = children[top.next++]!;
        if (depth.has(child) || !spreads.has(child)) top.best = Math.max(top.best, depth.get(child) ?? 0);
        else enter(child);
        continue;
      }
      stack.pop();
      depth.set(top.name, top.best + 1);
      const parent = stack[stack.length - 1];
      if (parent) parent.best = Math.max(parent.best, top.best + 1);
    }
    deepest = Math.max(deepest, depth.get(root) ?? 0);
  }
  return deepest;
}

function parseDocument(text: string): { ok: true; doc: DocumentNode } | Rejection {
  try {
    return { ok: true, doc: parse(text, { maxTokens: MAX_TOKENS, noLocation: true }) };
  } catch (error) {
    const message = error instanceof GraphQLError ? error.message : "invalid document";
    return reject("graphql_parse_error", `GraphQL document does not parse: ${message}`);
  }
}

/**
 * Every operation in the document, with the one the request selects marked. All of them are
 * returned because a server that ignores `operationName` (or picks the first operation) runs
 * another than the one selected: judging only the selected one let a read carry an unselected
 * `volumeDelete`. The document must also stay within the service's limits.
 */
export function analyseDocument(
  text: string,
  operationName: string | null,
  variables: Record<string, unknown>,
  limits: DocumentLimits,
  declared: ReadonlySet<string> = new Set(),
): { ok: true; operations: AnalysedOperation[] } | Rejection {
  const parsed = parseDocument(text);
  if (!parsed.ok) return parsed;
  // Before validation, whose fragment-cycle rule recurses once per spread of a chain.
  const nesting = fragmentNesting(parsed.doc);
  const maxNesting = Math.max(MAX_FRAGMENT_NESTING, limits.maxDepth);
  if (nesting > maxNesting) {
    return reject("graphql_too_deep", `GraphQL fragments spread each other ${nesting} levels deep; at most ${maxNesting} are allowed`);
  }
  const errors = validate(PLACEHOLDER_SCHEMA, parsed.doc, RULES);
  if (errors.length > 0) {
    return reject("graphql_invalid_document", `GraphQL document is invalid: ${errors[0]?.message ?? "unknown error"}`);
  }
  const operations: OperationDefinitionNode[] = [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of parsed.doc.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION) operations.push(def);
    else if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  let selected: OperationDefinitionNode | undefined;
  if (operationName !== null) {
    selected = operations.find((op) => op.name?.value === operationName);
    if (!selected) return reject("graphql_unknown_operation", `no operation named "${operationName}" in the document`);
  } else if (operations.length === 1) {
    selected = operations[0];
  } else {
    return reject(
      "graphql_ambiguous_operation",
      `document has ${operations.length} operations and no operationName: the server's choice cannot be known`,
    );
  }
  if (!selected) return reject("graphql_missing_operation", "document has no operation");

  const exceeded = checkLimits(operations, fragments, limits);
  if (exceeded) return exceeded;

  const out: AnalysedOperation[] = [];
  for (const op of operations) {
    const fields = rootFields(op, fragments, variables, declared);
    if (!fields.ok) return fields;
    out.push({ type: op.operation as OperationType, name: op.name?.value ?? null, selected: op === selected, fields: fields.fields });
  }
  return { ok: true, operations: out };
}

function rootFields(
  op: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  declared: ReadonlySet<string>,
): { ok: true; fields: RootField[] } | Rejection {
  const vars: Record<string, unknown> = {};
  for (const def of op.variableDefinitions ?? []) {
    const name = def.variable.name.value;
    if (Object.prototype.hasOwnProperty.call(variables, name)) vars[name] = variables[name];
    else if (def.defaultValue) vars[name] = valueFromASTUntyped(def.defaultValue);
  }
  const nodes: FieldNode[] = [];
  const expanded = expandRoot(op.selectionSet, fragments, nodes, []);
  if (!expanded.ok) return expanded;
  const fields: RootField[] = [];
  // A mutation's root field without arguments may be a namespace whose fields are the mutations
  // (`mutation { admin { deleteProject(id: 1) } }`): its selections are listed too, under it,
  // and so on down through fields without arguments. Every other selection below the root is
  // listed as well, marked `within` its parents: a namespace that takes arguments
  // (`mutation { tenant(id: "t") { deleteProject(id: 1) } }`) runs its fields as mutations too,
  // and a field the descriptor names acts wherever it is selected. The document's depth and
  // field limits (checked before) bound the walk; the classifier decides which to judge. Below
  // the root of a query or subscription only the fields the descriptor names (`declared`) can be
  // judged, so only those are listed (their arguments read): a read's selections cost nothing more.
  const visit = (node: FieldNode, namespace: string | undefined, within: string | undefined): Rejection | null => {
    if (within === undefined || op.operation === "mutation" || declared.has(node.name.value)) {
      const args: Record<string, unknown> = {};
      for (const arg of node.arguments ?? []) args[arg.name.value] = valueFromASTUntyped(arg.value, vars);
      const field: RootField = { name: node.name.value, alias: node.alias?.value ?? null, args };
      if (namespace !== undefined) field.namespace = namespace;
      if (within !== undefined) field.within = within;
      fields.push(field);
    }
    if (!node.selectionSet) return null;
    const children: FieldNode[] = [];
    const inner = expandRoot(node.selectionSet, fragments, children, [], Number.POSITIVE_INFINITY);
    if (!inner.ok) return inner;
    const parent = namespace ?? within;
    const path = parent === undefined ? node.name.value : `${parent}.${node.name.value}`;
    const opens = op.operation === "mutation" && within === undefined && (node.arguments?.length ?? 0) === 0;
    for (const child of children) {
      const failed = opens ? visit(child, path, undefined) : visit(child, undefined, path);
      if (failed) return failed;
    }
    return null;
  };
  for (const node of nodes) {
    const failed = visit(node, undefined, undefined);
    if (failed) return failed;
  }
  return { ok: true, fields };
}

interface Measure {
  fields: number;
  aliases: number;
  depth: number;
}

const CAP = Number.MAX_SAFE_INTEGER;
const add = (a: number, b: number): number => Math.min(CAP, a + b);

/**
 * Depth, aliases and fields of the document as a server executes it: fragments expanded, every
 * operation counted. Fragments are measured once each (memoised), so a document whose fragments
 * spread each other exponentially costs linear time to measure (cycles were refused by validation).
 */
function checkLimits(
  operations: readonly OperationDefinitionNode[],
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  limits: DocumentLimits,
): Rejection | null {
  const memo = new Map<string, Measure>();
  const measure = (set: SelectionSetNode | undefined): Measure => {
    const total: Measure = { fields: 0, aliases: 0, depth: 0 };
    for (const selection of set?.selections ?? []) {
      let part: Measure;
      if (selection.kind === Kind.FIELD) {
        const inner = measure(selection.selectionSet);
        part = { fields: add(inner.fields, 1), aliases: add(inner.aliases, selection.alias ? 1 : 0), depth: inner.depth + 1 };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        part = measure(selection.selectionSet);
      } else {
        const name = selection.name.value;
        let known = memo.get(name);
        if (!known) {
          known = measure(fragments.get(name)?.selectionSet);
          memo.set(name, known);
        }
        part = known;
      }
      total.fields = add(total.fields, part.fields);
      total.aliases = add(total.aliases, part.aliases);
      total.depth = Math.max(total.depth, part.depth);
    }
    return total;
  };
  const document: Measure = { fields: 0, aliases: 0, depth: 0 };
  for (const op of operations) {
    const m = measure(op.selectionSet);
    document.fields = add(document.fields, m.fields);
    document.aliases = add(document.aliases, m.aliases);
    document.depth = Math.max(document.depth, m.depth);
  }
  if (document.depth > limits.maxDepth) {
    return reject("graphql_too_deep", `GraphQL document nests ${document.depth} levels deep; this service allows at most ${limits.maxDepth} (graphql.limits.maxDepth)`);
  }
  if (document.aliases > limits.maxAliases) {
    return reject("graphql_too_many_aliases", `GraphQL document uses ${document.aliases} aliases; this service allows at most ${limits.maxAliases} (graphql.limits.maxAliases)`);
  }
  if (document.fields > limits.maxFields) {
    return reject("graphql_too_many_fields", `GraphQL document selects ${document.fields} fields; this service allows at most ${limits.maxFields} (graphql.limits.maxFields)`);
  }
  return null;
}

/**
 * Flattens a selection set (the root's, or a field's). Type conditions and @skip/@include are
 * ignored on purpose: a field that *might* run is classified as if it runs. Only the root's
 * fields are capped here; below it the document's field limit (checkLimits) bounds them.
 */
function expandRoot(
  set: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  out: FieldNode[],
  stack: string[],
  limit = MAX_ROOT_FIELDS,
): { ok: true } | Rejection {
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      out.push(selection);
      if (out.length > limit) return reject("graphql_too_many_fields", "too many root fields");
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const r = expandRoot(selection.selectionSet, fragments, out, stack, limit);
      if (!r.ok) return r;
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment) return reject("graphql_invalid_document", `unknown fragment "${name}"`);
      if (stack.includes(name)) return reject("graphql_invalid_document", `fragment "${name}" spreads itself`);
      const r = expandRoot(fragment.selectionSet, fragments, out, [...stack, name], limit);
      if (!r.ok) return r;
    }
  }
  return { ok: true };
}
