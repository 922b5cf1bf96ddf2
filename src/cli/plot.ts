// Training curves as a standalone SVG (no dependency): loss and accuracy per epoch, training
// and validation, in two panels side by side.
import type { RunHistory } from './checkpoint.ts';

const W = 960;
const H = 360;
const PANEL_W = 400;
const PANEL_H = 250;
const TRAIN = '#1f77b4';
const VAL = '#ff7f0e';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About 5 round tick values covering [lo, hi], and how many decimals tell them apart. */
function ticks(lo: number, hi: number): { values: number[]; decimals: number } {
  const span = hi - lo || 1;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * span; t += step) out.push(Number(t.toPrecision(12)));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) + (Math.abs(step / 10 ** Math.floor(Math.log10(step) + 1e-9) - 2.5) < 1e-9 ? 1 : 0);
  return { values: out, decimals };
}

function panel(x0: number, y0: number, title: string, epochs: number[], series: { name: string; colour: string; values: number[] }[], range?: [number, number], boundary?: number): string {
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  let [lo, hi] = range ?? [Math.min(...all), Math.max(...all)];
  if (!all.length) [lo, hi] = [0, 1];
  if (!range) {
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 0.1;
    lo = Math.max(0, lo - pad);
    hi += pad;
  }
  const n = epochs.length;
  const xOf = (i: number) => x0 + (n <= 1 ? PANEL_W / 2 : (i / (n - 1)) * PANEL_W);
  const yOf = (v: number) => y0 + PANEL_H - ((v - lo) / (hi - lo || 1)) * PANEL_H;
  const parts: string[] = [];
  parts.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<rect x="${x0}" y="${y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
  const { values, decimals } = ticks(lo, hi);
  for (const t of values) {
    const y = yOf(t);
    parts.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11">${t.toFixed(decimals)}</text>`);
  }
  // epoch labels: all of them up to 20, else about 10
  const every = Math.max(1, Math.ceil(n / 10));
  epochs.forEach((e, i) => {
    if (n > 20 && i % every !== 0 && i !== n - 1) return;
    parts.push(`<text x="${xOf(i).toFixed(1)}" y="${y0 + PANEL_H + 16}" text-anchor="middle" font-size="11">${e}</text>`);
  });
  parts.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 + PANEL_H + 34}" text-anchor="middle" font-size="12">epoch</text>`);
  if (boundary !== undefined && boundary > 0 && boundary < n) {
    // between the last epoch of the first phase and the first of the fine-tuning phase
    const bx = (xOf(boundary - 1) + xOf(boundary)) / 2;
    parts.push(`<line x1="${bx.toFixed(1)}" x2="${bx.toFixed(1)}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="#777" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${(bx + 4).toFixed(1)}" y="${y0 + 12}" font-size="11" fill="#555">fine-tuning</text>`);
  }
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (Number.isFinite(v) ? `${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}` : null)).filter((p): p is string => p !== null);
    if (pts.length > 1) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.colour}" stroke-width="2"/>`);
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      parts.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${s.colour}"/>`);
    }
    // legend under the panel, beside the axis label, where it cannot hide a point
    const lx = x0 + (k === 0 ? 0 : PANEL_W - 90);
    const ly = y0 + PANEL_H + 34;
    parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 26}" y="${ly}" font-size="12">${esc(s.name)}</text>`);
  });
  return parts.join('\n');
}

/** The SVG text of the training curves; `title` goes on top (e.g. the run's folder). */
export function historySvg(h: RunHistory, title = 'training history'): string {
  const epochs = h.epoch.map((e) => e + 1);
  const body = [
    panel(70, 60, 'loss', epochs, [
      { name: 'train loss', colour: TRAIN, values: h.history.loss },
      { name: 'val loss', colour: VAL, values: h.history.val_loss },
    ], undefined, h.fineTuneFrom),
    panel(70 + PANEL_W + 60, 60, 'accuracy', epochs, [
      { name: 'train acc', colour: TRAIN, values: h.history.acc },
      { name: 'val acc', colour: VAL, values: h.history.val_acc },
    ], [0, 1], h.fineTuneFrom),
  ];
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="13" fill="#555">${esc(title)}</text>
${body.join('\n')}
</svg>
`;
}
