/**
 * A small SVG line chart for training curves: series of (x, y) points, axes with a few ticks,
 * redrawn whenever a point arrives. No chart library: a few paths are all it takes.
 */
const SVG = 'http://www.w3.org/2000/svg';

export interface SeriesStyle {
  label: string;
  color: string;
  /** points only at the data (epoch values); otherwise a line */
  dots?: boolean;
  width?: number;
  dashed?: boolean;
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Round tick values covering [lo, hi]: 1, 2 or 5 times a power of ten apart. */
function ticks(lo: number, hi: number, count = 4): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export class LineChart {
  private readonly series = new Map<string, { style: SeriesStyle; points: [number, number][] }>();
  private xMax = 1;
  private readonly marks: { x: number; label: string }[] = [];
  private readonly w = 560;
  private readonly h = 220;
  private readonly pad = { l: 48, r: 12, t: 26, b: 30 };

  constructor(private readonly svg: SVGSVGElement, private readonly title: string, private readonly yRange: [number, number] | null = null, private readonly xLabel = 'step') {
    svg.setAttribute('viewBox', `0 0 ${this.w} ${this.h}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', title);
    this.render();
  }

  define(key: string, style: SeriesStyle): void {
    this.series.set(key, { style, points: [] });
  }

  /** The x axis runs to at least this (e.g. the total number of steps planned). */
  setXMax(x: number): void {
    this.xMax = Math.max(1, x);
    this.render();
  }

  setPoints(key: string, points: [number, number][]): void {
    const s = this.series.get(key);
    if (!s) throw new Error(`chart ${this.title}: no series '${key}'`);
    s.points = points.filter(([, y]) => Number.isFinite(y));
    this.render();
  }

  /** A labelled vertical line at x (e.g. where a training phase begins). */
  mark(x: number, label: string): void {
    this.marks.push({ x, label });
    this.render();
  }

  clear(): void {
    for (const s of this.series.values()) s.points = [];
    this.marks.length = 0;
    this.render();
  }

  private render(): void {
    const { w, h, pad } = this;
    const all = [...this.series.values()].flatMap((s) => s.points);
    let [lo, hi] = this.yRange ?? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
    if (hi - lo < 1e-6) [lo, hi] = [lo - 0.01, hi + 0.01];
    if (!this.yRange) {
      const m = (hi - lo) * 0.08;
      [lo, hi] = [lo - m, hi + m];
    }
    const xMax = Math.max(this.xMax, ...all.map((p) => p[0]));
    const X = (x: number) => pad.l + (x / xMax) * (w - pad.l - pad.r);
    const Y = (y: number) => h - pad.b - ((y - lo) / (hi - lo)) * (h - pad.t - pad.b);

    this.svg.replaceChildren();
    this.svg.append(el('rect', { x: 0, y: 0, width: w, height: h, fill: 'var(--chart-bg, #fff)' }));
    const title = el('text', { x: pad.l, y: 16, class: 'chart-title' });
    title.textContent = this.title;
    this.svg.append(title);
    for (const t of ticks(lo, hi)) {
      this.svg.append(el('line', { x1: pad.l, x2: w - pad.r, y1: Y(t), y2: Y(t), class: 'grid' }));
      const label = el('text', { x: pad.l - 6, y: Y(t) + 4, 'text-anchor': 'end', class: 'tick' });
      label.textContent = String(t);
      this.svg.append(label);
    }
    for (const t of ticks(0, xMax, 6).filter((v) => Number.isInteger(v))) {
      const label = el('text', { x: X(t), y: h - pad.b + 16, 'text-anchor': 'middle', class: 'tick' });
      label.textContent = String(t);
      this.svg.append(label);
    }
    const xl = el('text', { x: w - pad.r, y: h - 4, 'text-anchor': 'end', class: 'tick' });
    xl.textContent = this.xLabel;
    this.svg.append(xl);
    this.svg.append(el('line', { x1: pad.l, x2: pad.l, y1: pad.t, y2: h - pad.b, class: 'axis' }));
    this.svg.append(el('line', { x1: pad.l, x2: w - pad.r, y1: h - pad.b, y2: h - pad.b, class: 'axis' }));

    for (const m of this.marks) {
      this.svg.append(el('line', { x1: X(m.x), x2: X(m.x), y1: pad.t, y2: h - pad.b, stroke: '#888', 'stroke-dasharray': '2 3', class: 'mark', 'data-x': m.x }));
      const label = el('text', { x: X(m.x) + 4, y: pad.t + 10, class: 'tick mark-label' });
      label.textContent = m.label;
      this.svg.append(label);
    }
    let legendX = w - pad.r;
    for (const [key, { style, points }] of [...this.series.entries()].reverse()) {
      const d = points.map(([x, y], i) => `${i ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join('');
      const path = el('path', {
        d: d || 'M0,0',
        fill: 'none',
        stroke: style.color,
        'stroke-width': style.width ?? 1.5,
        'data-series': key,
        'data-points': points.length,
        ...(style.dashed ? { 'stroke-dasharray': '4 3' } : {}),
        ...(d ? {} : { visibility: 'hidden' }),
      });
      this.svg.append(path);
      if (style.dots) for (const [x, y] of points) this.svg.append(el('circle', { cx: X(x), cy: Y(y), r: 3, fill: style.color }));
      const label = el('text', { x: legendX, y: 16, 'text-anchor': 'end', fill: style.color, class: 'legend' });
      label.textContent = style.label;
      this.svg.append(label);
      legendX -= style.label.length * 6.5 + 16;
    }
  }
}
