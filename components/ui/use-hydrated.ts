"use client";

import { useSyncExternalStore } from "react";

const subscribe = () => () => undefined;

/**
 * False in the server's HTML and until React has hydrated the page, true after. A controlled
 * field that takes typing before hydration loses it (React renders its own state over it), so
 * such fields stay read-only until then: keystrokes are refused, not garbled, and browser
 * automation waits for the field to become editable.
 */
export function useHydrated(): boolean {
  return useSyncExternalStore(
    subscribe,
    () => true,
    () => false,
  );
}
