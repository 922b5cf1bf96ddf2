/**
 * Keras's progress bar (keras.utils.Progbar, verbose 1 and 2), writing to any text sink so the
 * browser can show it too. Values shown are running means weighted by batch size, as Keras does.
 */
export type Sink = (text: string) => void;

export function defaultSink(): { write: Sink; live: boolean } {
  const proc = (globalThis as { process?: { stdout?: { write(s: string): void; isTTY?: boolean } } }).process;
  if (proc?.stdout) return { write: (s) => proc.stdout!.write(s), live: !!proc.stdout.isTTY };
  return { write: (s) => console.log(s.replace(/\n$/, '')), live: false };
}

function fmtTime(seconds: number): string {
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}:${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
  return `${Math.round(seconds)}s`;
}

function perStep(seconds: number): string {
  if (seconds >= 1) return `${Math.round(seconds)}s/step`;
  if (seconds >= 1e-3) return `${Math.round(seconds * 1e3)}ms/step`;
  return `${Math.round(seconds * 1e6)}us/step`;
}

/** Keras's Progbar format: '%.4f' above 1e-3 in magnitude, else Python's '%.4e' (e-05, not e-5). */
export const fmtValue = (v: number) => {
  if (Math.abs(v) > 1e-3 || v === 0 || !Number.isFinite(v)) return Number.isFinite(v) ? v.toFixed(4) : String(v).toLowerCase();
  return v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2');
};

export class Progbar {
  private readonly start = Date.now();
  private sums = new Map<string, number>();
  private seen = 0;
  private lastWidth = 0;
  private lastUpdate = 0;

  constructor(private readonly target: number, private readonly verbose: number, private readonly sink: { write: Sink; live: boolean }, private readonly width = 30) {}

  /** Latest values of stateful metrics (AUC, precision, ...): already over the epoch so far, shown as they are. */
  private stateful: Record<string, number> = {};

  /**
   * Records one step's values (weighted by its batch size) and redraws. `stateful` values are
   * epoch-cumulative already (Keras's stateful metrics) and replace the previous ones.
   */
  update(current: number, values: Record<string, number>, batchSize: number, stateful: Record<string, number> = {}): void {
    for (const [k, v] of Object.entries(values)) this.sums.set(k, (this.sums.get(k) ?? 0) + v * batchSize);
    this.stateful = { ...this.stateful, ...stateful };
    this.seen += batchSize;
    if (this.verbose !== 1 || !this.sink.live) return;
    const now = Date.now();
    if (current < this.target && now - this.lastUpdate < 100) return;
    this.lastUpdate = now;
    const elapsed = (now - this.start) / 1000;
    const eta = (elapsed / current) * (this.target - current);
    const line = `${this.bar(current)} - ETA: ${fmtTime(eta)}${this.valueText()}`;
    this.sink.write(`\r${line}${' '.repeat(Math.max(0, this.lastWidth - line.length))}`);
    this.lastWidth = line.length;
  }

  /** Running means of everything recorded so far, then the stateful metrics' latest values. */
  means(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.sums) out[k] = v / Math.max(1, this.seen);
    return { ...out, ...this.stateful };
  }

  /** Final line of the epoch, with extra values (val_loss, val_acc) appended. */
  finish(current: number, extra: Record<string, number> = {}): void {
    if (this.verbose === 0) return;
    const elapsed = (Date.now() - this.start) / 1000;
    const tail = `${this.valueText()}${Object.entries(extra).map(([k, v]) => ` - ${k}: ${fmtValue(v)}`).join('')}`;
    const line = this.verbose === 1
      ? `${this.bar(current)} - ${fmtTime(elapsed)} ${perStep(elapsed / Math.max(1, current))}${tail}`
      : ` - ${fmtTime(elapsed)} - ${perStep(elapsed / Math.max(1, current))}${tail}`;
    const clear = this.sink.live && this.verbose === 1 ? `\r${' '.repeat(this.lastWidth)}\r` : '';
    this.sink.write(`${clear}${line}\n`);
  }

  private bar(current: number): string {
    const digits = String(this.target).length;
    const filled = Math.floor((this.width * current) / this.target);
    let bar = '='.repeat(Math.max(0, filled - (current < this.target ? 1 : 0)));
    if (current < this.target) bar += '>';
    return `${String(current).padStart(digits)}/${this.target} [${bar}${'.'.repeat(this.width - bar.length)}]`;
  }

  private valueText(): string {
    return Object.entries(this.means()).map(([k, v]) => ` - ${k}: ${fmtValue(v)}`).join('');
  }
}
