"use client";

import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";

type FieldErrors = Partial<Record<"currentPassword" | "newPassword" | "confirm", string[]>>;

/**
 * Changes the person's password through the API (POST /api/v1/session/password), not a server
 * action: the change gives this session a new token and the answer sets its cookie, which a server
 * action cannot do without Next.js rendering the page again with the old cookie (as for step-up,
 * components/auth/step-up.tsx).
 */
export function ChangePasswordForm() {
  const router = useRouter();
  const [pending, setPending] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const currentPassword = String(form.get("currentPassword") ?? "");
    const newPassword = String(form.get("newPassword") ?? "");
    setMessage(null);
    if (newPassword !== String(form.get("confirm") ?? "")) {
      setErrors({ confirm: ["The new passwords do not match."] });
      return;
    }
    setPending(true);
    try {
      const res = await fetch("/api/v1/session/password", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ currentPassword, newPassword }) });
      const body = (await res.json().catch(() => null)) as { endedSessions?: number; message?: string; issues?: Array<{ path: string; message: string }> } | null;
      if (res.ok) {
        formElement.reset();
        setErrors({});
        const ended = body?.endedSessions ?? 0;
        setMessage({ ok: true, text: `Password changed. ${ended === 0 ? "No other session was open." : `${ended} other session${ended === 1 ? " was" : "s were"} signed out.`}` });
        router.refresh();
        return;
      }
      const fieldErrors: FieldErrors = {};
      for (const issue of body?.issues ?? []) {
        if (issue.path === "currentPassword" || issue.path === "newPassword") (fieldErrors[issue.path] ??= []).push(issue.message);
      }
      setErrors(fieldErrors);
      // A problem shown at its field is not said twice: the alert points to the field instead.
      const shown = Object.values(fieldErrors).flat();
      const text = body?.message ?? "The password could not be changed. Try again.";
      setMessage({ ok: false, text: shown.includes(text) ? (shown.length > 1 ? "Please correct the highlighted fields." : "Please correct the highlighted field.") : text });
    } catch {
      setMessage({ ok: false, text: "The dashboard could not be reached. Try again." });
    } finally {
      setPending(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)} className="max-w-sm space-y-3" aria-label="Change password">
      <TextField label="Current password" name="currentPassword" type="password" autoComplete="current-password" required errors={errors.currentPassword} />
      <TextField label="New password" name="newPassword" type="password" autoComplete="new-password" required hint="At least 12 characters." errors={errors.newPassword} />
      <TextField label="New password again" name="confirm" type="password" autoComplete="new-password" required errors={errors.confirm} />
      <Button type="submit" disabled={pending}>
        {pending ? "Changing…" : "Change password"}
      </Button>
      {message ? (
        <p role={message.ok ? "status" : "alert"} className={`text-sm ${message.ok ? "text-green-700" : "text-red-700"}`}>
          {message.text}
        </p>
      ) : null}
    </form>
  );
}
