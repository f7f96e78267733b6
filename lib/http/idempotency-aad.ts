/** Binds a stored idempotent response to its row: a sealed body cannot be moved to another key. */
export function idempotencyResponseAad(id: string): string {
  return `bulkhead:idempotent-response:${id}`;
}
