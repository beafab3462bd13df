// A small Prometheus registry: counters, gauges and histograms rendered in the text exposition format.
// Shared by the gateway and the runner so both expose /metrics the same way without a client library.

type LabelValues<L extends string> = { readonly [K in L]: string | number };

interface Metric {
  readonly name: string;
  render(): string;
}

/** Escapes a label value as the exposition format requires (backslash, quote, newline). */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Series are keyed by their rendered label set, so recording a sample costs one string build and one
 * map lookup; label names are fixed per metric so a typo fails at start-up, not at scrape time.
 */
abstract class LabelledMetric<L extends string, S> implements Metric {
  protected readonly series = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    if (!NAME_RE.test(name)) throw new Error(`invalid metric name "${name}"`);
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l === 'le') throw new Error(`invalid label name "${l}" on ${name}`);
    }
  }

  protected key(labels: LabelValues<L> | undefined): string {
    if (this.labelNames.length === 0) return '';
    if (!labels) throw new Error(`${this.name} needs labels ${this.labelNames.join(', ')}`);
    let out = '';
    for (const l of this.labelNames) {
      const v = labels[l];
      if (v === undefined) throw new Error(`${this.name}: label "${l}" missing`);
      out += `${out ? ',' : ''}${l}="${escapeLabelValue(String(v))}"`;
    }
    return out;
  }

  protected abstract renderSeries(labels: string, state: S): string;
  protected abstract readonly type: 'counter' | 'gauge' | 'histogram';

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    for (const [labels, state] of this.series) out += this.renderSeries(labels, state);
    return out;
  }
}

export class Counter<L extends string = never> extends LabelledMetric<L, { value: number }> {
  protected readonly type = 'counter';

  inc(...args: [L] extends [never] ? [amount?: number] : [labels: LabelValues<L>, amount?: number]): void {
    const [labels, amount] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [
      LabelValues<L> | undefined,
      number | undefined,
    ];
    const by = amount ?? 1;
    if (by < 0) throw new Error(`${this.name}: counters only go up`);
    const key = this.key(labels);
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { value: by });
  }

  /** Current value (0 when the series was never recorded). */
  get(...args: [L] extends [never] ? [] : [labels: LabelValues<L>]): number {
    return this.series.get(this.key(args[0] as LabelValues<L> | undefined))?.value ?? 0;
  }

  protected renderSeries(labels: string, s: { value: number }): string {
    return `${this.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}\n`;
  }
}

export class Gauge<L extends string = never> extends LabelledMetric<L, { value: number }> {
  protected readonly type = 'gauge';

  set(...args: [L] extends [never] ? [value: number] : [labels: LabelValues<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [
      LabelValues<L> | undefined,
      number,
    ];
    const key = this.key(labels);
    const s = this.series.get(key);
    if (s) s.value = value;
    else this.series.set(key, { value });
  }

  get(...args: [L] extends [never] ? [] : [labels: LabelValues<L>]): number {
    return this.series.get(this.key(args[0] as LabelValues<L> | undefined))?.value ?? 0;
  }

  protected renderSeries(labels: string, s: { value: number }): string {
    return `${this.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}\n`;
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** Default buckets in seconds: 0.5 ms to 10 s, fitting request and publish latencies. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class Histogram<L extends string = never> extends LabelledMetric<L, HistogramState> {
  protected readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) {
      throw new Error(`${name}: buckets must be non-empty and strictly increasing`);
    }
    this.buckets = buckets;
  }

  observe(...args: [L] extends [never] ? [value: number] : [labels: LabelValues<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [
      LabelValues<L> | undefined,
      number,
    ];
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    // Counts are stored per bucket and accumulated at render time, so an observation touches one slot.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Number of observations (0 when the series was never recorded). */
  count(...args: [L] extends [never] ? [] : [labels: LabelValues<L>]): number {
    return this.series.get(this.key(args[0] as LabelValues<L> | undefined))?.count ?? 0;
  }

  protected renderSeries(labels: string, s: HistogramState): string {
    const sep = labels ? ',' : '';
    let out = '';
    let cumulative = 0;
    this.buckets.forEach((b, i) => {
      cumulative += s.counts[i]!;
      out += `${this.name}_bucket{${labels}${sep}le="${formatValue(b)}"} ${cumulative}\n`;
    });
    out += `${this.name}_bucket{${labels}${sep}le="+Inf"} ${s.count}\n`;
    out += `${this.name}_sum${labels ? `{${labels}}` : ''} ${formatValue(s.sum)}\n`;
    out += `${this.name}_count${labels ? `{${labels}}` : ''} ${s.count}\n`;
    return out;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Holds a process's metrics and renders them for a scrape. */
export class Registry {
  private readonly metrics = new Map<string, Metric>();

  register<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.register(new Counter<L>(name, help, labelNames));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.register(new Gauge<L>(name, help, labelNames));
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ): Histogram<L> {
    return this.register(new Histogram<L>(name, help, labelNames, buckets));
  }

  render(): string {
    let out = '';
    for (const m of this.metrics.values()) out += m.render();
    return out;
  }
}
