/** Recognises driver errors by their SQLSTATE / Prisma codes, as the real driver reports them. */
function codeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } };
  const original = e.meta?.driverAdapterError?.cause?.originalCode;
  if (typeof original === "string") return original;
  if (typeof e.code === "string") return e.code;
  return undefined;
}

/** A unique constraint was violated (Prisma P2002, PostgreSQL 23505). */
export function isUniqueViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === "P2002" || code === "23505";
}

/** A foreign key constraint was violated (Prisma P2003, PostgreSQL 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === "P2003" || code === "23503";
}
