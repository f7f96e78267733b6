/** Binds a sealed webhook secret to its row. */
export function webhookAad(id: string): string {
  return `bulkhead:webhook-secret:${id}`;
}
