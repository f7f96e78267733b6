import type { Registry } from "prom-client";

/** Any prom-client registry (the Prometheus or the OpenMetrics format). */
type AnyRegistry = Pick<Registry, "registerMetric">;

interface Series {
  label: string | null;
  /** Observations per bucket (not cumulative); index `bounds.length` is above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
  exemplar?: null;
  sharedLabels?: Record<string, string>;
}

/**
 * A Prometheus histogram with at most one label, for the request path, where the worker observes
 * about ten values per request (its stages, the request, the audit's flush lag). prom-client's
 * `observe` builds a closure, a labels object and a hash string for every call (~3 % of the
 * worker's CPU at 1k requests/s); this one looks the series up by the label's value and adds to a
 * bucket. It registers itself in the registry and renders exactly what a prom-client Histogram
 * with the same name, help, buckets and observations renders (tests/unit/proxy/fast-histogram.test.ts
 * compares the two), so scrapers see no difference.
 */
export class FastHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bounds: readonly number[];
  private series = new Map<string | null, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    private readonly labelName: string | null,
    registry: AnyRegistry,
  ) {
    this.bounds = [...buckets].sort((a, b) => a - b);
    // Like prom-client: a histogram without labels shows its zero series from the start.
    if (labelName === null) this.seriesFor(null);
    registry.registerMetric(this as never);
  }

  /** One observation (seconds, or whatever the unit is); `label` is the label's value. */
  observe(value: number, label: string | null = null): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
    const s = this.series.get(label) ?? this.seriesFor(label);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  private seriesFor(label: string | null): Series {
    const s: Series = { label, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
    this.series.set(label, s);
    return s;
  }

  reset(): void {
    this.series = new Map();
    if (this.labelName === null) this.seriesFor(null);
  }

  /** The values as prom-client's Histogram gives them to the registry's text format. */
  getForPromString(): { name: string; help: string; type: string; values: Value[]; aggregator: string } {
    const values: Value[] = [];
    for (const s of this.series.values()) {
      const shared: Record<string, string> = this.labelName !== null && s.label !== null ? { [this.labelName]: s.label } : {};
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += s.counts[i]!;
        values.push({ value: cumulative, labels: { le: bound }, metricName: `${this.name}_bucket`, exemplar: null, sharedLabels: shared });
      });
      values.push({ value: s.count, labels: { le: "+Inf" }, metricName: `${this.name}_bucket`, exemplar: null, sharedLabels: shared });
      values.push({ value: s.sum, labels: {}, metricName: `${this.name}_sum`, sharedLabels: shared });
      values.push({ value: s.count, labels: {}, metricName: `${this.name}_count`, sharedLabels: shared });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The JSON form (`registry.getMetricsAsJSON()`): the shared label merged into each value's labels. */
  get(): Promise<{ name: string; help: string; type: string; values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }>; aggregator: string }> {
    const data = this.getForPromString();
    return Promise.resolve({ ...data, values: data.values.map((v) => ({ value: v.value, labels: { ...v.labels, ...v.sharedLabels }, metricName: v.metricName, ...(v.exemplar !== undefined ? { exemplar: v.exemplar } : {}) })) });
  }
}
