/** Decisions listed row by row in a PDF; the counts and the timeline always cover all of them. */
export const PDF_DECISION_ROWS = 2_000;

/**
 * Held requests and task tokens listed row by row in a report (the HTML page and the PDF), oldest
 * first; the counts always cover all of them. An agent decides how many of its requests are held
 * over a task's life, and every row carries a URL: without a bound, the report of a long task
 * loaded them all into the dashboard's memory.
 */
export const REPORT_LIST_ROWS = 2_000;
