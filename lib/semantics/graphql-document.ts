/**
 * Which top-level fields will the server execute? Parsed with the `graphql` package and checked
 * with its own schema-independent validation rules (fragment cycles, unknown fragments, duplicate
 * names and arguments), then: select the operation as the server does, expand fragment spreads
 * and inline fragments at the root, and report every field under its real name.
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
}

export interface SelectedOperation {
  type: OperationType;
  name: string | null;
  fields: RootField[];
}

const MAX_TOKENS = 50_000;
const MAX_ROOT_FIELDS = 500;
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

function parseDocument(text: string): { ok: true; doc: DocumentNode } | Rejection {
  try {
    return { ok: true, doc: parse(text, { maxTokens: MAX_TOKENS, noLocation: true }) };
  } catch (error) {
    const message = error instanceof GraphQLError ? error.message : "invalid document";
    return reject("graphql_parse_error", `GraphQL document does not parse: ${message}`);
  }
}

export function selectOperation(
  text: string,
  operationName: string | null,
  variables: Record<string, unknown>,
): { ok: true; operation: SelectedOperation } | Rejection {
  const parsed = parseDocument(text);
  if (!parsed.ok) return parsed;
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

  const vars: Record<string, unknown> = {};
  for (const def of selected.variableDefinitions ?? []) {
    const name = def.variable.name.value;
    if (Object.prototype.hasOwnProperty.call(variables, name)) vars[name] = variables[name];
    else if (def.defaultValue) vars[name] = valueFromASTUntyped(def.defaultValue);
  }

  const nodes: FieldNode[] = [];
  const expanded = expandRoot(selected.selectionSet, fragments, nodes, []);
  if (!expanded.ok) return expanded;
  const fields = nodes.map((node) => {
    const args: Record<string, unknown> = {};
    for (const arg of node.arguments ?? []) args[arg.name.value] = valueFromASTUntyped(arg.value, vars);
    return { name: node.name.value, alias: node.alias?.value ?? null, args };
  });
  return { ok: true, operation: { type: selected.operation as OperationType, name: selected.name?.value ?? null, fields } };
}

/**
 * Flattens the root selection set. Type conditions and @skip/@include are ignored on purpose:
 * a field that *might* run is classified as if it runs.
 */
function expandRoot(
  set: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  out: FieldNode[],
  stack: string[],
): { ok: true } | Rejection {
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      out.push(selection);
      if (out.length > MAX_ROOT_FIELDS) return reject("graphql_too_many_fields", "too many root fields");
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const r = expandRoot(selection.selectionSet, fragments, out, stack);
      if (!r.ok) return r;
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment) return reject("graphql_invalid_document", `unknown fragment "${name}"`);
      if (stack.includes(name)) return reject("graphql_invalid_document", `fragment "${name}" spreads itself`);
      const r = expandRoot(fragment.selectionSet, fragments, out, [...stack, name]);
      if (!r.ok) return r;
    }
  }
  return { ok: true };
}
