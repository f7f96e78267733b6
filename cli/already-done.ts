import { AlreadyDoneError } from "@/lib/errors/app-error";

/**
 * Runs a kill switch (revoke a token, end a task, suspend or reactivate an agent) and says whether
 * it changed anything: one pulled already is answered as done, with `unchanged` saying what
 * happened and when, and the thing as it is (lib/errors/app-error.ts, AlreadyDoneError). The
 * command exits 0 either way: the state asked for holds, and a script pulling switches in an
 * incident must not stop on one that someone else pulled first.
 */
export async function pullSwitch<T>(run: Promise<T>): Promise<{ value: T; unchanged: string | null }> {
  try {
    return { value: await run, unchanged: null };
  } catch (error) {
    if (error instanceof AlreadyDoneError) return { value: error.current as T, unchanged: error.message };
    throw error;
  }
}
