// Starts the audit shipper's thread from its TypeScript source (tests, `tsx`): registers tsx in
// the thread, then loads shipper-thread.ts. Compiled builds start audit-shipper-thread.js instead.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.source);
