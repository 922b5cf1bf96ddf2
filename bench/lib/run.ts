import type { Gpu } from '../../src/gpu/index.ts';
import type { BenchRow } from './rows.ts';
import type { Tf, TfjsTimer } from './tfjs.ts';
import { median, type OpTimer, type TimingMethod } from './timing.ts';

export interface RunContext {
  gpu: Gpu;
  timer: OpTimer;
  /** Absent with --no-tfjs. */
  tf?: Tf;
  tfTimer?: TfjsTimer;
  warmup: number;
  repeats: number;
  ceilingGflops: number;
}

export interface RowResult {
  name: string;
  shape: string;
  flops: number;
  /** Median over the repeats, by the run's timing method. */
  oursMs: number;
  tfjsMs: number | null;
  /** Median wall clock (see TimingMethod) whatever the method. */
  oursWallMs: number;
  tfjsWallMs: number | null;
  oursGflops: number;
  tfjsGflops: number | null;
  ceilingGflops: number;
  /** TF.js ms / ours ms. */
  speedup: number | null;
  timing: TimingMethod;
  repeats: number;
}

/**
 * Times one row: warm-up runs of both engines (shader compilation, first uploads), then
 * `repeats` measurements alternating ours and TF.js, with the order flipped every repeat so
 * neither engine always runs right after the other. Reports medians.
 */
export async function runRow(row: BenchRow, ctx: RunContext): Promise<RowResult> {
  const { gpu, timer, tf, tfTimer } = ctx;
  const setup = await row.setup(gpu, tfTimer ? tf : undefined);
  try {
    const { ours, tfjs } = setup;
    const rival = tfTimer && tfjs ? { timer: tfTimer, run: tfjs.run } : null;
    for (let i = 0; i < ctx.warmup; i++) {
      await timer.time(ours.op);
      if (rival) await rival.timer.time(rival.run);
    }
    const oursMs: number[] = [], oursWall: number[] = [], tfMs: number[] = [], tfWall: number[] = [];
    const timeOurs = async () => {
      const s = await timer.time(ours.op);
      oursMs.push(s.ms);
      oursWall.push(s.wallMs);
    };
    const timeRival = async () => {
      if (!rival) return;
      const s = await rival.timer.time(rival.run);
      tfMs.push(s.ms);
      tfWall.push(s.wallMs);
    };
    for (let r = 0; r < ctx.repeats; r++) {
      if (r % 2 === 0) {
        await timeOurs();
        await timeRival();
      } else {
        await timeRival();
        await timeOurs();
      }
    }
    const flops = ours.flops ?? row.flops;
    const o = median(oursMs);
    const t = rival ? median(tfMs) : null;
    return {
      name: row.name,
      shape: row.shape,
      flops,
      oursMs: o,
      tfjsMs: t,
      oursWallMs: median(oursWall),
      tfjsWallMs: rival ? median(tfWall) : null,
      oursGflops: flops / o / 1e6,
      tfjsGflops: t === null ? null : flops / t / 1e6,
      ceilingGflops: ctx.ceilingGflops,
      speedup: t === null ? null : t / o,
      timing: timer.method,
      repeats: ctx.repeats,
    };
  } finally {
    setup.dispose();
  }
}
