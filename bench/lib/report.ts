import type { RowResult } from './run.ts';

/** The keys every JSON row has (bench/README.md documents them). */
export const JSON_KEYS = [
  'name', 'shape', 'oursMs', 'tfjsMs', 'oursGflops', 'ceilingGflops',
  'tfjsGflops', 'speedup', 'flops', 'oursWallMs', 'tfjsWallMs', 'timing', 'repeats',
] as const;

export type JsonRow = { [K in (typeof JSON_KEYS)[number]]: RowResult[K] };

/** One plain object per row for `--json FILE` (numbers rounded to what is meaningful). */
export function jsonRows(results: readonly RowResult[]): JsonRow[] {
  const round = (v: number | null, digits: number) => (v === null ? null : Number(v.toPrecision(digits)));
  return results.map((r) => ({
    name: r.name,
    shape: r.shape,
    oursMs: round(r.oursMs, 5) as number,
    tfjsMs: round(r.tfjsMs, 5),
    oursGflops: round(r.oursGflops, 4) as number,
    ceilingGflops: round(r.ceilingGflops, 4) as number,
    tfjsGflops: round(r.tfjsGflops, 4),
    speedup: round(r.speedup, 4),
    flops: r.flops,
    oursWallMs: round(r.oursWallMs, 5) as number,
    tfjsWallMs: round(r.tfjsWallMs, 5),
    timing: r.timing,
    repeats: r.repeats,
  }));
}

function fmt(v: number | null, digits = 3): string {
  if (v === null || !Number.isFinite(v)) return '-';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 10) return v.toFixed(digits - 1);
  return v.toFixed(digits);
}

function pct(v: number | null, ceiling: number): string {
  return v === null ? '-' : `${((100 * v) / ceiling).toFixed(1)}%`;
}

/** The results as an aligned text table. */
export function formatTable(results: readonly RowResult[]): string {
  const header = ['row', 'shape', 'ours ms', 'TF.js ms', 'speed-up', 'ours GFLOP/s', 'TF.js GFLOP/s', 'ours % ceil', 'TF.js % ceil'];
  const lines = results.map((r) => [
    r.name,
    r.shape,
    fmt(r.oursMs),
    fmt(r.tfjsMs),
    r.speedup === null ? '-' : `${r.speedup.toFixed(2)}x`,
    fmt(r.oursGflops, 2),
    fmt(r.tfjsGflops, 2),
    pct(r.oursGflops, r.ceilingGflops),
    pct(r.tfjsGflops, r.ceilingGflops),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const left = new Set([0, 1]);
  const row = (cells: string[]) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [row(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(row)].join('\n');
}
