import client from "prom-client";
import { describe, expect, it } from "vitest";
import { FastHistogram } from "@/proxy-worker/fast-histogram";
import { createMetrics } from "@/proxy-worker/metrics";

const BUCKETS = [0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1];

/** Values on, between, below and above the bounds, in a fixed pseudo-random order. */
function values(n: number): number[] {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const special = [0, -0.001, ...BUCKETS, 0.1000001, 7, 1e-9];
  return Array.from({ length: n }, (_, i) => (i % 7 === 0 ? special[i % special.length]! : next() ** 4 * 0.2));
}

describe("FastHistogram renders exactly what prom-client's Histogram renders", () => {
  it("with a label: text and JSON, series in first-seen order", async () => {
    const ours = new client.Registry();
    const theirs = new client.Registry();
    const fast = new FastHistogram("bulkhead_stage_seconds", "Time per pipeline stage", BUCKETS, "stage", ours);
    const reference = new client.Histogram({ name: "bulkhead_stage_seconds", help: "Time per pipeline stage", labelNames: ["stage"], buckets: BUCKETS, registers: [theirs] });
    const stages = ["authenticate", "canonicalise", "classify", "decide", "destination", "record"];
    values(5000).forEach((v, i) => {
      const stage = stages[(i * 5) % stages.length]!;
      fast.observe(v, stage);
      reference.observe({ stage }, v);
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it("without labels: the zero series before any observation, then the same numbers", async () => {
    const ours = new client.Registry();
    const theirs = new client.Registry();
    const buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
    const fast = new FastHistogram("lag_seconds", "lag", buckets, null, ours);
    const reference = new client.Histogram({ name: "lag_seconds", help: "lag", buckets, registers: [theirs] });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const v of values(2000)) {
      fast.observe(v);
      reference.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    fast.reset();
    reference.reset();
    // prom-client's reset empties even the unlabelled series; ours keeps the zero series, as at start.
    expect(await ours.metrics()).toContain("lag_seconds_count 0");
  });

  it("in the OpenMetrics format too", async () => {
    const ours = new client.Registry<typeof client.Registry.OPENMETRICS_CONTENT_TYPE>();
    const theirs = new client.Registry<typeof client.Registry.OPENMETRICS_CONTENT_TYPE>();
    ours.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    theirs.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    const fast = new FastHistogram("req_seconds", "requests", [0.001, 0.01, 0.1], "status_class", ours);
    const reference = new client.Histogram({ name: "req_seconds", help: "requests", labelNames: ["status_class"], buckets: [0.001, 0.01, 0.1], registers: [theirs] });
    for (const [i, v] of values(300).entries()) {
      const c = ["2xx", "4xx", "failed"][i % 3]!;
      fast.observe(v, c);
      reference.observe({ status_class: c }, v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it("refuses a value that is not a finite number, as prom-client does", () => {
    const fast = new FastHistogram("x_seconds", "x", [1], null, new client.Registry());
    expect(() => fast.observe(Number.NaN)).toThrow(TypeError);
    expect(() => fast.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });

  it("is what the worker's metrics use, registered once under its name", async () => {
    const m = createMetrics();
    m.stage.observe(0.00002, "decide");
    m.request.observe(0.003, "2xx");
    m.auditLag.observe(0.0004);
    const text = await m.registry.metrics();
    expect(text).toContain('bulkhead_stage_seconds_bucket{le="0.00005",stage="decide"} 1');
    expect(text).toContain('bulkhead_forwarded_request_seconds_count{status_class="2xx"} 1');
    expect(text).toContain("bulkhead_audit_flush_lag_seconds_sum 0.0004");
    expect(m.registry.getSingleMetric("bulkhead_stage_seconds")).toBe(m.stage);
  });
});
