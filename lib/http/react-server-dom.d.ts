// React's reply decoder as Next.js vendors it (the server half of server actions), which proxy.ts
// uses to check a server action's body the way Next.js will decode it (lib/http/action-request.ts).
declare module "next/dist/compiled/react-server-dom-turbopack/server.node" {
  export function decodeReply(body: string | FormData, serverManifest: Record<string, unknown>, options?: { temporaryReferences?: unknown }): Promise<unknown>;
  export function createTemporaryReferenceSet(): unknown;
}
