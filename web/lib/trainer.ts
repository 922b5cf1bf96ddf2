/**
 * Runs Model.fit for the page with stop and resume between steps, and keeps the per-step and
 * per-epoch numbers the charts draw. Stop sets Keras's `model.stopTraining`; resume finishes the
 * interrupted epoch (fit with stepsPerEpoch = the steps left) and then the remaining epochs. The
 * flows are endless streams and the model keeps its step counter and momentum, so a stopped and
 * resumed run gives exactly the numbers of an uninterrupted one. Platform-free.
 *
 * EarlyStopping is driven here rather than passed to fit: a run may be several fit() calls (a
 * resume finishes the interrupted epoch in one of its own), and EarlyStopping resets at each
 * fit's start and restores at each fit's end. The trainer starts it once, shows it only whole
 * epochs, and lets it restore the best weights only when training really ends.
 *
 * A second phase (Keras's fine-tuning after the frozen-base phase) starts when the first phase's
 * epochs are done, also when that happens across a stop and resume: each fit() runs within one
 * phase, and the phase's entry (unfreeze, recompile) runs once, before its first fit.
 */
import type { CallbackModel, EarlyStopping } from '../../src/graph/callbacks.ts';
import type { Logs, Model } from '../../src/graph/model.ts';
import type { DirectoryIterator } from '../../src/io/flow.ts';

export interface StepRecord {
  epoch: number;
  /** step within its epoch, from 0 */
  step: number;
  /** steps since training began, from 1 */
  global: number;
  loss: number;
  acc: number;
  size: number;
  /** time since the previous step finished (or since training (re)started) */
  ms: number;
  /** the learning rate this step's update used (the optimizer's, schedule applied) */
  lr: number;
}

export interface EpochRecord {
  epoch: number;
  /** means over the epoch's steps, weighted by batch size (Keras's epoch logs) */
  loss: number;
  acc: number;
  valLoss: number;
  valAcc: number;
  /** the global step it ended on */
  global: number;
  /** the learning rate of the epoch's last update (logs.learning_rate when a callback logged one) */
  learningRate: number;
  /** ended by a stop before its last step (Keras still validates then); replaced when resumed */
  partial: boolean;
}

export interface TrainerEvents {
  onStep?(s: StepRecord): void;
  onEpoch?(e: EpochRecord): void;
  /** Keras's progress text (Model.fit's sink) */
  onLog?(text: string): void;
}

export type TrainerState = 'ready' | 'running' | 'stopping' | 'paused' | 'done' | 'failed';

export interface SecondPhase {
  /** the first epoch (0-based) of the second phase: the first phase's epoch count */
  from: number;
  /** puts the model in the second phase (e.g. program.ts's enterFineTuning: unfreeze and recompile) */
  enter(model: Model): void | Promise<void>;
}

export interface TrainerOptions {
  /** Keras's EarlyStopping (e.g. on val_loss with restoreBestWeights); see the note above */
  earlyStopping?: EarlyStopping | null;
  /** a fine-tuning phase after `from` epochs, up to totalEpochs */
  secondPhase?: SecondPhase | null;
}

export class Trainer {
  readonly steps: StepRecord[] = [];
  readonly epochs: EpochRecord[] = [];
  state: TrainerState = 'ready';
  error: Error | null = null;
  /** the epoch in progress (or next), and how many of its steps are done */
  epoch = 0;
  stepInEpoch = 0;
  /** the epoch (0-based) after which EarlyStopping ended training, or null */
  stoppedEpoch: number | null = null;
  /** the epoch (0-based) whose weights EarlyStopping put back at the end, or null */
  restoredEpoch: number | null = null;
  /** the epoch (0-based) the second phase began at, once it has; null before (or without one) */
  fineTuneFrom: number | null = null;
  /** steps done before the current phase (the phase's optimizer counts its updates from 0) */
  private phaseStart = 0;
  private stopRequested = false;
  private last = 0;

  constructor(
    readonly model: Model,
    readonly train: DirectoryIterator,
    readonly test: DirectoryIterator,
    readonly totalEpochs: number,
    private readonly events: TrainerEvents = {},
    private readonly options: TrainerOptions = {},
  ) {}

  get stepsPerEpoch(): number {
    return this.train.length;
  }

  /** Asks fit to stop after the step in progress (Keras's model.stop_training). */
  stop(): void {
    if (this.state !== 'running') return;
    this.stopRequested = true;
    this.model.stopTraining = true;
    this.state = 'stopping';
  }

  /** Trains from where it stands to the last epoch, or until stop(). */
  async run(): Promise<TrainerState> {
    if (this.state === 'running' || this.state === 'stopping') throw new Error('training is already running');
    if (this.state === 'done') return this.state;
    this.state = 'running';
    this.stopRequested = false;
    this.last = now();
    const es = this.options.earlyStopping ?? null;
    try {
      if (es && this.steps.length === 0) {
        es.setModel(this.model as unknown as CallbackModel);
        es.onTrainBegin();
      }
      const second = this.options.secondPhase ?? null;
      while (this.epoch < this.totalEpochs && !this.stopRequested && this.stoppedEpoch === null) {
        if (second && this.fineTuneFrom === null && this.epoch >= second.from) {
          await second.enter(this.model);
          this.fineTuneFrom = this.epoch;
          this.phaseStart = this.steps.length;
        }
        // a fit never crosses into the second phase: it ends at the first phase's last epoch
        const phaseEnd = second && this.fineTuneFrom === null ? Math.min(second.from, this.totalEpochs) : this.totalEpochs;
        const resuming = this.stepInEpoch > 0;
        await this.model.fit(this.train, {
          epochs: resuming ? this.epoch + 1 : phaseEnd,
          initialEpoch: this.epoch,
          stepsPerEpoch: resuming ? this.stepsPerEpoch - this.stepInEpoch : undefined,
          validationData: this.test,
          verbose: 1,
          sink: (text) => this.events.onLog?.(text),
          callbacks: [this.callback()],
        });
      }
      const finished = this.epoch >= this.totalEpochs || this.stoppedEpoch !== null;
      if (finished && es) {
        await es.onTrainEnd(); // restores the best epoch's weights (Keras: also without an early stop)
        if (es.restoreBestWeights && es.best !== null) this.restoredEpoch = es.bestEpoch;
      }
      this.state = finished ? 'done' : 'paused';
    } catch (e) {
      this.error = e instanceof Error ? e : new Error(String(e));
      this.state = 'failed';
      throw this.error;
    }
    return this.state;
  }

  private callback() {
    return {
      // fit clears stopTraining when it starts: a stop asked for between two fits holds.
      onEpochBegin: () => {
        if (this.stopRequested) this.model.stopTraining = true;
      },
      onBatchEnd: (_step: number, logs: { loss: number; acc: number; size: number }) => {
        const t = now();
        // each phase's optimizer starts at update 0, so the phase's step n (from 1) was update n - 1
        const lr = this.model.optimizer.currentLearningRate(this.steps.length - this.phaseStart);
        const rec: StepRecord = { epoch: this.epoch, step: this.stepInEpoch, global: this.steps.length + 1, loss: logs.loss, acc: logs.acc, size: logs.size, ms: t - this.last, lr };
        this.last = t;
        this.steps.push(rec);
        this.stepInEpoch++;
        if (this.stopRequested) this.model.stopTraining = true;
        this.events.onStep?.(rec);
      },
      onEpochEnd: async (_epoch: number, logs: Logs) => {
        const mine = this.steps.filter((s) => s.epoch === this.epoch);
        const seen = mine.reduce((a, s) => a + s.size, 0);
        const rec: EpochRecord = {
          epoch: this.epoch,
          loss: mine.reduce((a, s) => a + s.loss * s.size, 0) / seen,
          acc: mine.reduce((a, s) => a + s.acc * s.size, 0) / seen,
          valLoss: logs.val_loss ?? NaN,
          valAcc: logs.val_acc ?? NaN,
          global: this.steps.length,
          learningRate: logs.learning_rate ?? mine[mine.length - 1]?.lr ?? NaN,
          partial: this.stepInEpoch < this.stepsPerEpoch,
        };
        const es = this.options.earlyStopping;
        if (es && !rec.partial) {
          await es.onEpochEnd(this.epoch, logs); // sets model.stopTraining when it stops
          if (es.stoppedEpoch > 0) this.stoppedEpoch = es.stoppedEpoch;
        }
        const prev = this.epochs.length ? this.epochs[this.epochs.length - 1] : null;
        if (prev && prev.epoch === rec.epoch) this.epochs.pop(); // a resumed epoch replaces its partial record
        this.epochs.push(rec);
        if (!rec.partial) {
          this.epoch++;
          this.stepInEpoch = 0;
        }
        this.events.onEpoch?.(rec);
        this.last = now();
      },
    };
  }
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
