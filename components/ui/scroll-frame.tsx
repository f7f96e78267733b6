"use client";

import { useEffect, useRef, useState, type ReactNode } from "react";

/**
 * The frame a wide table scrolls sideways in (the page itself never does). While its content is
 * wider than the frame, the frame is a named region in the tab order, so a keyboard user can
 * focus it and scroll it with the arrow keys (WCAG 2.1.1); a table that fits adds no tab stop.
 */
export function ScrollFrame({ label, className = "", children }: { label: string; className?: string; children: ReactNode }) {
  const ref = useRef<HTMLDivElement | null>(null);
  const [scrolls, setScrolls] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const check = () => setScrolls(el.scrollWidth > el.clientWidth);
    check();
    const observer = new ResizeObserver(check);
    observer.observe(el);
    if (el.firstElementChild) observer.observe(el.firstElementChild);
    return () => observer.disconnect();
  }, []);
  return (
    <div
      ref={ref}
      className={`overflow-x-auto focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-600 ${className}`}
      {...(scrolls ? { role: "region", "aria-label": label, tabIndex: 0 } : {})}
    >
      {children}
    </div>
  );
}
