"use client";

import { useEffect, useState } from "react";

/** Time left until a hold times out, ticking each second. */
export function Countdown({ until }: { until: string }) {
  const end = new Date(until).getTime();
  const [now, setNow] = useState<number | null>(null);
  useEffect(() => {
    const first = setTimeout(() => setNow(Date.now()), 0);
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      clearTimeout(first);
      clearInterval(t);
    };
  }, []);
  if (now === null) return <span data-testid="countdown">until {new Date(until).toISOString().slice(11, 19)} UTC</span>;
  const left = Math.max(0, Math.round((end - now) / 1000));
  const text = left === 0 ? "timed out" : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
  return (
    <span data-testid="countdown" className={left < 60 ? "font-semibold text-red-700" : ""}>
      {text}
    </span>
  );
}
