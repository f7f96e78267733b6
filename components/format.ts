/** Dates are shown in UTC ISO form: unambiguous for teams across time zones. */
export function formatTime(date: Date | null | undefined): string {
  if (!date) return "—";
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}
