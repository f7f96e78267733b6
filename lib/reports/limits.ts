/** Decisions listed row by row in a PDF; the counts and the timeline always cover all of them. */
export const PDF_DECISION_ROWS = 2_000;
