/**
 * A server action request whose body Next.js cannot decode, refused before Next.js tries.
 *
 * Next.js decodes a server action's arguments with React's reply decoder before any of Bulkhead's
 * code runs (its origin, session and role checks included), and a body the decoder throws on
 * (`["$Q1"]`: a reference to a part that was never sent; `[`; a multipart body that does not
 * parse; more than 1,000 arguments; a body over the form limit) ended as a 500 with an error
 * digest, signed out too. A browser running the dashboard's pages never sends such a body, so it is
 * a malformed request: proxy.ts answers it 400 (413 when too large) with the reason, and nothing
 * runs. The check decodes the body with React's own decoder, the one Next.js uses, so both agree on
 * what decodes; it is given no server functions at all, so decoding here can load and run none (a
 * reference to one is refused: the dashboard's pages never pass a function as an argument).
 */

import { readBodyBytes } from "./body-limit";
import { unknownActionStatus } from "./server-actions.mjs";

/** What Next.js treats as a server action: the same tests as its own (next/dist/server/lib/server-action-request-meta). */
export interface ActionRequestShape {
  /** A `Next-Action` header on a POST: a fetch action, its arguments in the body. */
  fetchAction: boolean;
  /** A multipart POST without the header: possibly a form posted without JavaScript (`$ACTION_ID_`/`$ACTION_REF_` fields). */
  formAction: boolean;
}

export function actionRequestShape(method: string, headers: Headers): ActionRequestShape {
  if (method !== "POST") return { fetchAction: false, formAction: false };
  const fetchAction = headers.get("next-action") !== null;
  // Next.js compares case-sensitively; so does this, or the two would disagree on what is multipart.
  const multipart = (headers.get("content-type") ?? "").startsWith("multipart/form-data");
  return { fetchAction, formAction: !fetchAction && multipart };
}

/** React's reply decoder (react-server-dom-*`/server`), as Next.js calls it. */
export interface ReplyDecoder {
  decodeReply(body: string | FormData, serverManifest: Record<string, unknown>, options?: { temporaryReferences?: unknown }): PromiseLike<unknown>;
  createTemporaryReferenceSet(): unknown;
}

export interface ActionRefusal {
  status: 400 | 413;
  /** Why, as the end of "Bad request: this server action request ..." */
  reason: string;
}

/**
 * A form posted without JavaScript that names a server action this build does not have: the proxy
 * answers it as Next.js would, unlogged (lib/http/server-actions.mjs; the header case is answered
 * by scripts/request-guard.mjs, which needs no body).
 */
export interface UnknownAction {
  unknownAction: true;
  status: 400 | 409;
}

const unknownActionOf = (id: string): UnknownAction => ({ unknownAction: true, status: unknownActionStatus(id) });

/** Next.js refuses an action called with more arguments than this (SERVER_ACTION_ARGS_LIMIT, a 500). */
export const ACTION_ARGUMENT_LIMIT = 1000;

// No server function can be resolved from this manifest: a `$h`/`$F` reference fails to decode.
const NO_SERVER_FUNCTIONS: Record<string, unknown> = Object.freeze(Object.create(null) as Record<string, unknown>);

/**
 * Why Next.js could not decode `request` as a server action, or null when it can (or it is not
 * one). Reads the request's body (a clone of it when called from the proxy, which Next.js keeps
 * for the action); at most `limitBytes` of it, Next.js's own limit for an action's body.
 */
export async function malformedActionRequest(request: Request, decoder: ReplyDecoder, limitBytes: number, knownActions: ReadonlySet<string> | null = null): Promise<ActionRefusal | UnknownAction | null> {
  const shape = actionRequestShape(request.method, request.headers);
  if (!shape.fetchAction && !shape.formAction) return null;
  const body = await readBodyBytes(request, limitBytes);
  if (body === null) return { status: 413, reason: `is larger than the ${formatBytes(limitBytes)} a form of the dashboard may send` };
  const contentType = request.headers.get("content-type") ?? "";
  if (contentType.startsWith("multipart/form-data")) {
    let form: FormData;
    try {
      form = await new Response(body, { headers: { "content-type": contentType } }).formData();
    } catch {
      return { status: 400, reason: "has a multipart body that does not parse" };
    }
    return shape.fetchAction ? checkArguments(decoder, form) : checkFormAction(decoder, form, knownActions);
  }
  // Next.js reads any other body as UTF-8 text (invalid bytes replaced), as this does.
  return checkArguments(decoder, new TextDecoder().decode(body));
}

async function checkArguments(decoder: ReplyDecoder, body: string | FormData): Promise<ActionRefusal | null> {
  let args: unknown;
  try {
    args = await decoder.decodeReply(body, NO_SERVER_FUNCTIONS, { temporaryReferences: decoder.createTemporaryReferenceSet() });
  } catch {
    return { status: 400, reason: "has arguments that do not decode" };
  }
  return argumentList(args, "arguments");
}

function argumentList(args: unknown, what: string): ActionRefusal | null {
  if (!Array.isArray(args)) return { status: 400, reason: `has ${what} that are not a list` };
  if (args.length > ACTION_ARGUMENT_LIMIT) return { status: 400, reason: `has more than ${ACTION_ARGUMENT_LIMIT} ${what}` };
  return null;
}

/**
 * A form posted without JavaScript names its action in a field: `$ACTION_ID_<id>`, or
 * `$ACTION_REF_<n>` with the action and its bound arguments encoded in the `$ACTION_<n>:` fields,
 * which React decodes as a reply of their own (decodeAction: the last such field counts). A
 * multipart body without either is not an action, and Next.js answers it itself.
 */
async function checkFormAction(decoder: ReplyDecoder, form: FormData, knownActions: ReadonlySet<string> | null): Promise<ActionRefusal | UnknownAction | null> {
  let actionKey: string | null = null;
  for (const key of form.keys()) {
    if (key.startsWith("$ACTION_REF_")) actionKey = key;
    else if (key.startsWith("$ACTION_ID_")) {
      actionKey = key;
      // Next.js checks every action a form names before it decodes any.
      const id = key.slice("$ACTION_ID_".length);
      if (knownActions !== null && !knownActions.has(id)) return unknownActionOf(id);
    }
  }
  if (actionKey === null || !actionKey.startsWith("$ACTION_REF_")) return null;
  const prefix = `$ACTION_${actionKey.slice("$ACTION_REF_".length)}:`;
  const bound = new FormData();
  for (const [key, value] of form.entries()) if (key.startsWith(prefix)) bound.append(key.slice(prefix.length), value);
  try {
    const meta = (await decoder.decodeReply(bound, NO_SERVER_FUNCTIONS)) as { id?: unknown; bound?: unknown } | null;
    if (typeof meta !== "object" || meta === null || typeof meta.id !== "string") return { status: 400, reason: "names its action in a form field that does not decode" };
    if (knownActions !== null && !knownActions.has(meta.id)) return unknownActionOf(meta.id);
    return meta.bound === null || meta.bound === undefined ? null : argumentList(await meta.bound, "bound arguments");
  } catch {
    return { status: 400, reason: "has bound arguments that do not decode" };
  }
}

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`;
}
