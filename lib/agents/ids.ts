import { z } from "zod";

/** Ids are UUIDs; anything else is "not found", never a database error. */
export const uuidSchema = z.uuid({ error: "Not a valid id." });
