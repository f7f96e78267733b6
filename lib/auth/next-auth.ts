import "server-only";
import NextAuth from "next-auth";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { buildAuthConfig } from "./auth-config";

/** next-auth bound to this process's configuration and database (see lib/auth/auth-config.ts). */
export const { handlers, auth, signIn, signOut } = NextAuth(() => buildAuthConfig(loadAppConfig(), getDb()));
