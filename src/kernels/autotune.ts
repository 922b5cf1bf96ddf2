// Kernel variants chosen by measurement on the user's adapter. A kernel with several correct
// variants for a shape (conv2d.ts: subgroup tile heights, tiled, large tiles, Winograd) hands
// the tuner its candidates; the tuner runs each on buffers of that shape, keeps the fastest and
// remembers it per adapter and shape in a store (Node: a file beside the weights cache; a page:
// localStorage, else memory), so later plans build at once. Measuring stops at a time budget;
// shapes left over keep the rules of variants.ts and are measured on a later run.
//
// Only where a tuner is attached (attachTuner: the CLI and the page do it) and the family is
// 'auto': a forced family (WEBGPU_FINETUNE_KERNELS) is never second-guessed, and code that
// builds kernels without a tuner (the library's default, the tests) gets the rules.
import type { Gpu, GpuOp } from '../gpu/index.ts';

/** Bump when kernels change enough that stored measurements no longer hold. */
export const TUNING_VERSION = 1;

/** Where measurements persist between runs. */
export interface TuningStore {
  /** For messages: a path, or "this page's localStorage". */
  readonly where: string;
  read(): Promise<string | null>;
  write(text: string): Promise<void>;
}

/** Measurements that last as long as the page or process. */
export function memoryTuningStore(): TuningStore {
  let text: string | null = null;
  return { where: 'memory (this session only)', read: async () => text, write: async (t) => { text = t; } };
}

/** The browser's localStorage under `key`, or null where there is none (Node, workers, disabled storage). */
export function localStorageTuningStore(key = 'webgpu-finetune.kernel-tuning'): TuningStore | null {
  let ls: Storage | undefined;
  try {
    ls = (globalThis as { localStorage?: Storage }).localStorage;
  } catch {
    return null; // access itself throws where storage is blocked
  }
  if (!ls) return null;
  const storage = ls;
  return {
    where: "this page's localStorage",
    read: async () => storage.getItem(key),
    write: async (t) => {
      try {
        storage.setItem(key, t);
      } catch {
        // quota exceeded or storage blocked: the choices still hold for this session
      }
    },
  };
}

/** One candidate: `prepare` builds it (pipelines, buffers of the shape) and returns what one run submits. */
export interface TuningCandidate {
  name: string;
  prepare(): Promise<{ ops: GpuOp[]; dispose(): void }>;
}

/**
 * A shape's measurement: the winner and each candidate's best time in ms (null: it failed to
 * build or run); `skipped`: candidates not run because they lost badly on this adapter before.
 */
export interface TunedShape {
  choice: string;
  ms: Record<string, number | null>;
  skipped?: string[];
}

export interface TunerOptions {
  /** Measuring time allowed over the tuner's life, in ms (0: only stored choices are used). Default 5000. */
  budgetMs?: number;
  store?: TuningStore;
  /** Warnings (a damaged store). */
  warn?: (line: string) => void;
}

interface StoreFile {
  format: 'webgpu-finetune-kernel-tuning';
  version: number;
  adapters: Record<string, Record<string, TunedShape>>;
}

/** A candidate whose first run takes this much longer than the best so far is not run again. */
const CLEARLY_SLOWER = 1.5;
/** Runs of a promising candidate (the first one included); its time is the fastest. */
const RUNS = 3;
/**
 * A candidate at least this many times slower than the winner on PRUNE_AFTER shapes of this
 * adapter, and never closer, is not measured on further shapes (on a CPU adapter the
 * workgroup-memory kernels lose by 5-10x, and one run of them can take seconds).
 */
const BADLY_SLOWER = 3;
const PRUNE_AFTER = 2;

const tuners = new WeakMap<Gpu, KernelTuner>();

/** Makes kernels built on `gpu` from now on tune themselves (under the 'auto' family). */
export function attachTuner(gpu: Gpu, tuner: KernelTuner): void {
  tuners.set(gpu, tuner);
}

/** The tuner kernels on `gpu` consult, if tuning applies (one attached, family 'auto'). */
export function tunerFor(gpu: Gpu): KernelTuner | null {
  return gpu.kernelFamily === 'auto' ? tuners.get(gpu) ?? null : null;
}

export class KernelTuner {
  readonly budgetMs: number;
  readonly store: TuningStore;
  /** What happened so far: distinct shapes answered from the store, measured now, left to the rules. */
  readonly stats = { stored: 0, measured: 0, overBudget: 0, spentMs: 0 };
  private readonly measuredNow = new Set<string>();
  private readonly storedNow = new Set<string>();
  private readonly leftNow = new Set<string>();
  /** The adapter the measurements belong to (vendor, architecture, device, description, mode). */
  readonly adapterKey: string;
  private file: StoreFile | null = null;
  private loading: Promise<void> | null = null;
  /** Measurements run one at a time (plans build their kernels concurrently). */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly warn: (line: string) => void;

  constructor(private readonly gpu: Gpu, options: TunerOptions = {}) {
    this.budgetMs = Math.max(0, options.budgetMs ?? 5000);
    this.store = options.store ?? memoryTuningStore();
    this.warn = options.warn ?? ((l) => console.warn(l));
    const a = gpu.adapter;
    this.adapterKey = [a.vendor, a.architecture, a.device, a.description, a.featureLevel, a.isFallbackAdapter ? 'fallback' : ''].join('|');
  }

  /**
   * The fastest of `candidates` for the shape `key`: stored, else measured now (each one's ops
   * submitted and timed from submit to queue completion), else null once the budget is spent.
   * A stored winner that is no longer a candidate is measured again.
   */
  choose(key: string, candidates: TuningCandidate[]): Promise<(TunedShape & { how: 'stored' | 'measured' }) | null> {
    const run = this.queue.then(() => this.chooseNow(key, candidates));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The measurements stored for this adapter (for `info`). */
  async stored(): Promise<Readonly<Record<string, TunedShape>>> {
    await this.load();
    return this.file!.adapters[this.adapterKey] ?? {};
  }

  /** One line for train --verbose and the page. */
  summary(): string {
    const s = this.stats;
    const left = s.overBudget ? `, ${s.overBudget} left to the rules (over the ${(this.budgetMs / 1000).toFixed(1)} s budget; measured on a later run)` : '';
    return `kernel tuning: ${s.stored} shape(s) from ${this.store.where}, ${s.measured} measured in ${(s.spentMs / 1000).toFixed(1)} s${left}`;
  }

  private async chooseNow(key: string, candidates: TuningCandidate[]): Promise<(TunedShape & { how: 'stored' | 'measured' }) | null> {
    await this.load();
    const shapes = (this.file!.adapters[this.adapterKey] ??= {});
    const known = shapes[key];
    if (known && candidates.some((c) => c.name === known.choice)) {
      // layers of one shape, and a layer's training and inference programs, ask again
      if (this.measuredNow.has(key)) return { ...known, how: 'measured' };
      this.storedNow.add(key);
      this.stats.stored = this.storedNow.size;
      return { ...known, how: 'stored' };
    }
    // A shape is measured whole once started (so every run stores at least one): the budget
    // is checked between shapes, and a run overshoots it by at most one shape.
    if (this.stats.spentMs >= this.budgetMs) {
      this.leftNow.add(key);
      this.stats.overBudget = this.leftNow.size;
      return null;
    }
    const t0 = performance.now();
    const ms: Record<string, number | null> = {};
    const skipped: string[] = [];
    let best = Infinity;
    for (const [i, c] of candidates.entries()) {
      // the first (the rules' pick) always runs
      if (i > 0 && this.losesBadly(c.name, shapes)) {
        skipped.push(c.name);
        continue;
      }
      ms[c.name] = await this.measure(c, best);
      if (ms[c.name] !== null && ms[c.name]! < best) best = ms[c.name]!;
    }
    this.stats.spentMs += performance.now() - t0;
    const choice = candidates.find((c) => ms[c.name] === best)?.name;
    if (!choice) return null; // nothing ran: the rules decide
    this.stats.measured++;
    this.measuredNow.add(key);
    shapes[key] = skipped.length ? { choice, ms, skipped } : { choice, ms };
    await this.save();
    return { ...shapes[key], how: 'measured' };
  }

  /** Whether `name` lost by BADLY_SLOWER on PRUNE_AFTER measured shapes of this adapter, and never did better. */
  private losesBadly(name: string, shapes: Record<string, TunedShape>): boolean {
    let lost = 0;
    for (const e of Object.values(shapes)) {
      const t = e.ms[name];
      const win = e.ms[e.choice];
      if (t === undefined || t === null || !win) continue;
      if (t < BADLY_SLOWER * win) return false;
      lost++;
    }
    return lost >= PRUNE_AFTER;
  }

  /** The candidate's fastest run in ms, or null if it fails to build or run. */
  private async measure(c: TuningCandidate, best: number): Promise<number | null> {
    let prepared: Awaited<ReturnType<TuningCandidate['prepare']>>;
    try {
      prepared = await c.prepare();
    } catch {
      return null; // e.g. a pipeline over this device's limits: not a candidate here
    }
    try {
      let fastest = Infinity;
      for (let r = 0; r < RUNS; r++) {
        const t = performance.now();
        this.gpu.submit(`tuning ${c.name}`, prepared.ops);
        await this.gpu.sync();
        fastest = Math.min(fastest, performance.now() - t);
        if (fastest > CLEARLY_SLOWER * best) break;
      }
      return fastest;
    } catch {
      return null;
    } finally {
      prepared.dispose();
    }
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      const empty: StoreFile = { format: 'webgpu-finetune-kernel-tuning', version: TUNING_VERSION, adapters: {} };
      let text: string | null = null;
      try {
        text = await this.store.read();
      } catch (e) {
        this.warn(`kernel tuning: could not read ${this.store.where} (${(e as Error).message}); measuring again`);
      }
      if (text === null) {
        this.file = empty;
        return;
      }
      try {
        const f = JSON.parse(text) as StoreFile;
        const ok = f?.format === 'webgpu-finetune-kernel-tuning' && typeof f.adapters === 'object' && f.adapters !== null;
        if (!ok) throw new Error('not a kernel-tuning file');
        // measurements of older kernels are dropped, not trusted; so are entries not of this form
        this.file = f.version === TUNING_VERSION ? { ...empty, adapters: wellFormed(f.adapters) } : empty;
      } catch (e) {
        this.warn(`kernel tuning: ignoring ${this.store.where}: ${(e as Error).message}; it is measured again and rewritten`);
        this.file = empty;
      }
    })();
    return this.loading;
  }

  private async save(): Promise<void> {
    try {
      await this.store.write(`${JSON.stringify(this.file, null, 1)}\n`);
    } catch (e) {
      this.warn(`kernel tuning: could not save to ${this.store.where} (${(e as Error).message}); the choices hold for this run only`);
    }
  }
}

/** The entries of a parsed store that have the form TunedShape, per adapter (a hand-edited file loses the rest). */
function wellFormed(adapters: unknown): StoreFile['adapters'] {
  const out: StoreFile['adapters'] = {};
  for (const [adapter, shapes] of Object.entries(adapters as Record<string, unknown>)) {
    if (typeof shapes !== 'object' || shapes === null) continue;
    out[adapter] = {};
    for (const [key, e] of Object.entries(shapes as Record<string, Partial<TunedShape>>)) {
      const ms = e?.ms;
      if (typeof e?.choice !== 'string' || typeof ms !== 'object' || ms === null) continue;
      if (!Object.values(ms).every((t) => t === null || (typeof t === 'number' && Number.isFinite(t)))) continue;
      out[adapter][key] = { choice: e.choice, ms, ...(Array.isArray(e.skipped) ? { skipped: e.skipped.filter((n) => typeof n === 'string') } : {}) };
    }
  }
  return out;
}
