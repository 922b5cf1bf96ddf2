// Buffer lifetimes for a list of steps, and their assignment to reusable slots. Pure: the plan
// builds its steps here first (also without a device, for model.memory()), then allocates one
// GPU buffer per slot.

/** A tensor-sized piece of device memory in a schedule; `fixed` ones are not pooled. */
export class VBuf {
  first = Infinity;
  last = -Infinity;
  slot = -1;
  constructor(readonly label: string, readonly floats: number, readonly fixed: string | null = null) {}
}

export interface Step<Op> {
  label: string;
  /** Steps of the forward-only region (repeated per micro-batch; skipped when a feature cache replays them). */
  forwardOnly: boolean;
  uses: VBuf[];
  emit: (buf: (v: VBuf) => GPUBuffer) => Op[];
}

export class Schedule<Op> {
  readonly steps: Step<Op>[] = [];

  /** Marks the steps added next as forward-only (or not). */
  forwardOnly = false;

  add(label: string, uses: (VBuf | null | undefined)[], emit: Step<Op>['emit']): void {
    const at = this.steps.length;
    const list = uses.filter((u): u is VBuf => !!u);
    for (const v of list) {
      v.first = Math.min(v.first, at);
      v.last = Math.max(v.last, at);
    }
    this.steps.push({ label, forwardOnly: this.forwardOnly, uses: list, emit });
  }

  /** Pooled buffers used by some step. */
  buffers(): VBuf[] {
    const seen = new Set<VBuf>();
    for (const s of this.steps) for (const v of s.uses) if (!v.fixed) seen.add(v);
    return [...seen];
  }
}

/**
 * Slots shared by several schedules (a plan's training, evaluation and prediction steps never
 * run at the same time): within a schedule two buffers share a slot only when their lifetimes do
 * not overlap. A slot's size is the largest buffer it ever holds.
 */
export class SlotPool {
  readonly sizes: number[] = [];

  /** Assigns every pooled buffer of `schedule` a slot (best fit, else grow the largest free one). */
  assign(schedule: Schedule<unknown>): void {
    const bufs = schedule.buffers().sort((a, b) => a.first - b.first || b.floats - a.floats);
    const busyUntil = new Map<number, number>(); // slot -> last step of its current holder
    for (const v of bufs) {
      const free = this.sizes.map((_, i) => i).filter((i) => (busyUntil.get(i) ?? -Infinity) < v.first);
      let pick = -1;
      for (const i of free) if (this.sizes[i] >= v.floats && (pick < 0 || this.sizes[i] < this.sizes[pick])) pick = i;
      if (pick < 0 && free.length) pick = free.reduce((a, b) => (this.sizes[b] > this.sizes[a] ? b : a));
      if (pick < 0) {
        pick = this.sizes.length;
        this.sizes.push(0);
      }
      this.sizes[pick] = Math.max(this.sizes[pick], v.floats);
      busyUntil.set(pick, v.last);
      v.slot = pick;
    }
  }

  get totalFloats(): number {
    return this.sizes.reduce((a, b) => a + b, 0);
  }
}
