/**
 * The most a dashboard form's submission may weigh (a server action's request body): Next.js
 * refuses a larger one with 413 before any of Bulkhead's code runs, which the page could only show
 * as a failed page, the person's input gone. `next.config.ts` sets the limit from this number and
 * forms check it before sending (components/ui/use-form-action.ts), so the person is told and keeps
 * what they typed. The largest field a form takes is a policy or a service descriptor (200,000
 * characters each), well under it.
 */
export const FORM_BODY_LIMIT_BYTES = 1024 * 1024;
