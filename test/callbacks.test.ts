// Issue 13 (callbacks): Keras 3's EarlyStopping, ReduceLROnPlateau, LearningRateScheduler,
// ModelCheckpoint and CSVLogger, driven by scripted metric sequences on a fake model. Expected
// epochs and messages follow keras/src/callbacks/*.py (Keras 3); number texts were checked with Python.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CallbackList,
  EarlyStopping,
  LearningRateScheduler,
  ModelCheckpoint,
  ReduceLROnPlateau,
  monitorDirection,
  pyFormat,
  pyFormatNumber,
  pyRepr,
  type CallbackHooks,
  type CallbackModel,
  type Logs,
  type WeightList,
} from '../src/graph/callbacks.ts';
import { CSVLogger } from '../src/io/csv-logger-node.ts';

/** Weights are one number: the count of epochs trained, so restored weights name their epoch. */
class FakeModel implements CallbackModel {
  stopTraining = false;
  optimizer: { learningRate: number | object };
  trained = 0;
  setCalls = 0;
  saved: string[] = [];
  constructor(lr: number | object = 0.01) {
    this.optimizer = { learningRate: lr };
  }
  async getWeights(): Promise<WeightList> {
    return [{ name: 'dense/kernel', shape: [1], data: new Float32Array([this.trained]) }];
  }
  async setWeights(w: WeightList): Promise<void> {
    this.trained = w[0].data[0];
    this.setCalls++;
  }
  async saveWeights(path: string): Promise<void> {
    this.saved.push(path);
    await writeFile(path, `weights after ${this.trained} epochs`);
  }
}

/** fit()'s order: setModel, onTrainBegin, then per epoch onEpochBegin, steps, onEpochEnd; onTrainEnd. */
async function fit(model: FakeModel, callbacks: CallbackHooks[], epochs: Logs[], steps = 0): Promise<{ ran: number; logs: Logs[]; lrs: number[] }> {
  const list = new CallbackList(callbacks, model);
  const seen: Logs[] = [];
  const lrs: number[] = [];
  model.stopTraining = false;
  await list.trainBegin();
  let ran = 0;
  for (let epoch = 0; epoch < epochs.length; epoch++) {
    await list.epochBegin(epoch);
    lrs.push(model.optimizer.learningRate as number);
    for (let s = 0; s < steps; s++) await list.batchEnd(s, { loss: 1 });
    model.trained = epoch + 1;
    const logs = { ...epochs[epoch] };
    await list.epochEnd(epoch, logs);
    seen.push(logs);
    ran++;
    if (model.stopTraining) break;
  }
  await list.trainEnd();
  return { ran, logs: seen, lrs };
}

const series = (key: string, values: number[]): Logs[] => values.map((v) => ({ loss: 1, [key]: v }));

function recorder(): { lines: string[]; print: (s: string) => void } {
  const lines: string[] = [];
  return { lines, print: (s) => lines.push(s) };
}

describe('Python number formatting (Keras messages and file names)', () => {
  it('prints floats as Python repr and str.format do', () => {
    expect([1, 0.5, 1e-5, 1.5e-5, 0.0001, 1e16, 123456789, -0, 0.00010000000474974513].map(pyRepr)).toEqual(['1.0', '0.5', '1e-05', '1.5e-05', '0.0001', '1e+16', '123456789.0', '-0.0', '0.00010000000474974513']);
    expect([Infinity, -Infinity, NaN].map(pyRepr)).toEqual(['inf', '-inf', 'nan']);
    // exact binary value, ties to even: JS toFixed gives '0.13' and '3' here, Python '0.12' and '2'
    expect(pyFormatNumber(0.125, '.2f')).toBe('0.12');
    expect(pyFormatNumber(2.5, '.0f')).toBe('2');
    expect(pyFormatNumber(2.675, '.2f')).toBe('2.67');
    expect(pyFormatNumber(Infinity, '.5f')).toBe('inf');
    expect(pyFormatNumber(-Infinity, '.5f')).toBe('-inf');
    expect(pyFormatNumber(0.000123456, 'e')).toBe('1.234560e-04');
    expect(pyFormatNumber(0.000123456, '.3g')).toBe('0.000123');
    expect(pyFormatNumber(1234.5, '.3')).toBe('1.23e+03');
    expect(pyFormatNumber(12, '.3')).toBe('12.0');
    expect(pyFormatNumber(3.14159, '08.3f')).toBe('0003.142');
    expect(pyFormatNumber(-3.14159, '08.3f')).toBe('-003.142');
  });

  it('fills Keras file name templates', () => {
    const ints = new Set(['epoch']);
    expect(pyFormat('weights.{epoch:02d}-{val_loss:.2f}.h5', { epoch: 3, val_loss: 0.12345 }, ints)).toBe('weights.03-0.12.h5');
    expect(pyFormat('{epoch}-{loss}-{{x}}', { epoch: 7, loss: 1 }, ints)).toBe('7-1.0-{x}');
    expect(pyFormat('e{epoch:03d}_{val_acc:.4f}', { epoch: 12, val_acc: 0.87654321 }, ints)).toBe('e012_0.8765');
    expect(() => pyFormat('{val_loss:d}', { val_loss: 0.5 })).toThrow(/Unknown format code 'd'/);
    expect(() => pyFormat('{nope}', { epoch: 1 })).toThrow("'nope'");
    expect(() => pyFormat('a}b', {})).toThrow(/Single '}'/);
  });
});

describe('EarlyStopping', () => {
  it('stops when the wait reaches patience, and says so at train end', async () => {
    const out = recorder();
    const es = new EarlyStopping({ monitor: 'loss', patience: 2, verbose: 1, print: out.print });
    const m = new FakeModel();
    const r = await fit(m, [es], [1.0, 0.9, 0.95, 0.92, 0.91, 0.5].map((loss) => ({ loss })));
    expect(r.ran).toBe(4);
    expect(es.stoppedEpoch).toBe(3);
    expect(es.bestEpoch).toBe(1);
    expect(out.lines).toEqual(['Epoch 4: early stopping']);
    expect(m.setCalls).toBe(0);
  });

  it('patience 0 stops at the first epoch without improvement (never at epoch 0)', async () => {
    const es = new EarlyStopping({ monitor: 'val_loss' });
    expect((await fit(new FakeModel(), [es], series('val_loss', [1.0, 1.1, 0.5]))).ran).toBe(2);
    expect(es.stoppedEpoch).toBe(1);
  });

  it('min_delta counts as improvement only a change larger than |min_delta|, in either sign', async () => {
    for (const minDelta of [0.1, -0.1]) {
      const es = new EarlyStopping({ monitor: 'val_loss', patience: 1, minDelta });
      expect(es.minDelta).toBe(-0.1); // Keras keeps it negative when minimizing
      expect((await fit(new FakeModel(), [es], series('val_loss', [1.0, 0.95, 0.85, 0.8]))).ran).toBe(2);
    }
    const plain = new EarlyStopping({ monitor: 'val_loss', patience: 1 });
    expect((await fit(new FakeModel(), [plain], series('val_loss', [1.0, 0.95, 0.85, 0.8]))).ran).toBe(4);
    const max = new EarlyStopping({ monitor: 'val_acc', patience: 1, minDelta: 0.05 });
    expect(max.minDelta).toBe(0.05);
    expect((await fit(new FakeModel(), [max], series('val_acc', [0.5, 0.54, 0.6]))).ran).toBe(2);
    expect((await fit(new FakeModel(), [max], series('val_acc', [0.5, 0.56, 0.62]))).ran).toBe(3);
  });

  it("mode 'auto' maximizes accuracy metrics and minimizes losses; 'min'/'max' override", async () => {
    const accs = [0.5, 0.6, 0.55, 0.7];
    expect((await fit(new FakeModel(), [new EarlyStopping({ monitor: 'val_acc', patience: 1 })], series('val_acc', accs))).ran).toBe(3);
    expect((await fit(new FakeModel(), [new EarlyStopping({ monitor: 'val_acc', patience: 1, mode: 'min' })], series('val_acc', accs))).ran).toBe(2);
    expect((await fit(new FakeModel(), [new EarlyStopping({ monitor: 'val_loss', patience: 1, mode: 'max' })], series('val_loss', accs))).ran).toBe(3);
    expect(['acc', 'val_accuracy', 'binary_accuracy', 'val_auc', 'precision'].map((n) => monitorDirection(n, 'auto'))).toEqual(['greater', 'greater', 'greater', 'greater', 'greater']);
    expect(['loss', 'val_loss', 'val_mse', 'mean_absolute_error'].map((n) => monitorDirection(n, 'auto'))).toEqual(['less', 'less', 'less', 'less']);
    expect(() => new EarlyStopping({ monitor: 'val_foo' })).toThrow("EarlyStopping callback received monitor=val_foo but Keras isn't able to automatically determine whether that metric should be maximized or minimized. Pass `mode='max'` in order to do early stopping based on the highest metric value, or pass `mode='min'` in order to use the lowest value.");
    expect(() => new EarlyStopping({ monitor: 'val_foo', mode: 'max' })).not.toThrow();
    const warned: string[] = [];
    const odd = new EarlyStopping({ monitor: 'val_acc', mode: 'biggest' as 'max', warn: (s) => warned.push(s) });
    expect(odd.mode).toBe('auto');
    expect(warned).toEqual(['EarlyStopping mode biggest is unknown, fallback to auto mode.']);
  });

  it('baseline: the wait resets only on beating it; improving values above it keep training (Keras 3)', async () => {
    // Keras 3 starts `best` at None, not at the baseline (Keras 2 did, and would stop at epoch 1 here)
    const improving = new EarlyStopping({ monitor: 'val_loss', patience: 2, baseline: 0.5, restoreBestWeights: true });
    const m = new FakeModel();
    expect((await fit(m, [improving], series('val_loss', [1.0, 0.9, 0.8, 0.7, 0.6]))).ran).toBe(5);
    expect(improving.stoppedEpoch).toBe(0);
    expect(m.trained).toBe(5); // best epoch 4 (index) restored even though it never beat the baseline
    const flat = new EarlyStopping({ monitor: 'val_loss', patience: 2, baseline: 0.5 });
    expect((await fit(new FakeModel(), [flat], series('val_loss', [1.0, 1.0, 1.0, 1.0]))).ran).toBe(2);
    const beaten = new EarlyStopping({ monitor: 'val_loss', patience: 2, baseline: 0.5 });
    expect((await fit(new FakeModel(), [beaten], series('val_loss', [1.0, 0.4, 0.45, 0.46, 0.47]))).ran).toBe(4);
    expect(beaten.stoppedEpoch).toBe(3);
  });

  it("matches Keras's own cases: no epoch beats the baseline, and a stop requested by another callback", async () => {
    const losses = series('val_loss', [0.9, 0.8, 0.7, 0.71, 0.72, 0.73]);
    const m = new FakeModel();
    const r = await fit(m, [new EarlyStopping({ patience: 5, baseline: 0.5, restoreBestWeights: true })], losses);
    expect([r.ran, m.trained]).toEqual([5, 3]); // best epoch index 2
    const stopper: CallbackHooks = { onEpochEnd: (epoch) => void (epoch === 3 && (o.stopTraining = true)) };
    const o = new FakeModel();
    const s = await fit(o, [new EarlyStopping({ patience: 5, baseline: 0.5, restoreBestWeights: true }), stopper], losses);
    expect([s.ran, o.trained]).toEqual([4, 3]);
  });

  it('start_from_epoch skips the warm-up epochs entirely', async () => {
    const losses = [1, 2, 3, 2.5, 2.6, 2.0];
    const es = new EarlyStopping({ monitor: 'loss', startFromEpoch: 2, restoreBestWeights: true });
    const m = new FakeModel();
    expect((await fit(m, [es], losses.map((loss) => ({ loss })))).ran).toBe(5);
    expect(es.stoppedEpoch).toBe(4);
    expect(es.bestEpoch).toBe(3);
    expect(m.trained).toBe(4);
    expect((await fit(new FakeModel(), [new EarlyStopping({ monitor: 'loss' })], losses.map((loss) => ({ loss })))).ran).toBe(2);
  });

  it('restores the best epoch weights at train end, also without an early stop', async () => {
    const out = recorder();
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 10, restoreBestWeights: true, verbose: 1, print: out.print });
    const m = new FakeModel();
    expect((await fit(m, [es], series('val_loss', [1.0, 0.5, 0.7, 0.8]))).ran).toBe(4);
    expect(m.trained).toBe(2); // the weights at the end of epoch 2 (index 1), not the last ones
    expect(m.setCalls).toBe(1);
    expect(out.lines).toEqual(['Restoring model weights from the end of the best epoch: 2.']);
  });

  it('restores after an early stop, messages in Keras order', async () => {
    const out = recorder();
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 2, restoreBestWeights: true, verbose: 1, print: out.print });
    const m = new FakeModel();
    expect((await fit(m, [es], series('val_loss', [1.0, 0.5, 0.7, 0.8, 0.1]))).ran).toBe(4);
    expect(m.trained).toBe(2);
    expect([es.bestEpoch, es.stoppedEpoch]).toEqual([1, 3]);
    expect(out.lines).toEqual(['Epoch 4: early stopping', 'Restoring model weights from the end of the best epoch: 2.']);
    // reused: state resets at train begin
    const again = await fit(m, [es], series('val_loss', [3, 2, 1]));
    expect(again.ran).toBe(3);
    expect([es.bestEpoch, es.stoppedEpoch, m.trained]).toEqual([2, 0, 3]);
  });

  it('warns (once) and does nothing when the monitored key is missing', async () => {
    const warned: string[] = [];
    const es = new EarlyStopping({ monitor: 'val_loss', restoreBestWeights: true, warn: (s) => warned.push(s) });
    const m = new FakeModel();
    expect((await fit(m, [es], [1, 1, 1].map((loss) => ({ loss, acc: 0.5 })))).ran).toBe(3);
    expect(warned).toEqual(['Early stopping conditioned on metric `val_loss` which is not available. Available metrics are: loss,acc']);
    expect(m.setCalls).toBe(0);
    expect(m.trained).toBe(3);
  });
});

describe('ReduceLROnPlateau', () => {
  it('reduces after patience epochs; the rate reads back as Keras float32 variable; logs learning_rate', async () => {
    const out = recorder();
    const cb = new ReduceLROnPlateau({ factor: 0.1, patience: 2, verbose: 1, print: out.print });
    const m = new FakeModel(0.001);
    const r = await fit(m, [cb], series('val_loss', [1.0, 0.9, 0.9, 0.9, 0.9]));
    expect(out.lines).toEqual(['Epoch 4: ReduceLROnPlateau reducing learning rate to 0.00010000000474974513.']);
    expect(m.optimizer.learningRate).toBe(Math.fround(0.001) * 0.1);
    // learning_rate is logged before the reduction, as Keras does
    expect(r.logs.map((l) => l.learning_rate)).toEqual([0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513, Math.fround(Math.fround(0.001) * 0.1)]);
  });

  it('min_delta (default 1e-4) and factor', async () => {
    const out = recorder();
    const m = new FakeModel(0.5);
    await fit(m, [new ReduceLROnPlateau({ patience: 1, factor: 0.5, verbose: 1, print: out.print })], series('val_loss', [1.0, 0.99995, 0.5]));
    expect(out.lines).toEqual(['Epoch 2: ReduceLROnPlateau reducing learning rate to 0.25.']);
    const none = recorder();
    await fit(new FakeModel(0.5), [new ReduceLROnPlateau({ patience: 1, factor: 0.5, minDelta: 0, verbose: 1, print: none.print })], series('val_loss', [1.0, 0.99995, 0.5]));
    expect(none.lines).toEqual([]);
    expect(() => new ReduceLROnPlateau({ factor: 1.5 })).toThrow('ReduceLROnPlateau does not support a factor >= 1.0. Received factor=1.5');
  });

  it('cooldown: no waiting for cooldown epochs after a reduction', async () => {
    const flat = series('val_loss', [1, 1, 1, 1, 1, 1, 1]);
    const m = new FakeModel(1);
    const r = await fit(m, [new ReduceLROnPlateau({ patience: 1, factor: 0.5, cooldown: 2 })], flat);
    expect(r.lrs).toEqual([1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]); // reductions at the ends of epochs 1, 3, 5
    const fast = await fit(new FakeModel(1), [new ReduceLROnPlateau({ patience: 1, factor: 0.5 })], flat);
    expect(fast.lrs).toEqual([1, 1, 0.5, 0.25, 0.125, 0.0625, 0.03125]);
  });

  it('min_lr bounds the rate and, once reached (as float32), stops the messages', async () => {
    const out = recorder();
    const m = new FakeModel(0.5);
    await fit(m, [new ReduceLROnPlateau({ patience: 1, factor: 0.5, minLr: 0.2, verbose: 1, print: out.print })], series('val_loss', [1, 1, 1, 1, 1]));
    expect(out.lines).toEqual(['Epoch 2: ReduceLROnPlateau reducing learning rate to 0.25.', 'Epoch 3: ReduceLROnPlateau reducing learning rate to 0.2.']);
    expect(m.optimizer.learningRate).toBe(0.2);
  });

  it("mode 'auto' is Keras's 'acc'-in-the-name rule here", async () => {
    const rising = series('val_acc', [0.5, 0.6, 0.7, 0.8]);
    expect((await fit(new FakeModel(1), [new ReduceLROnPlateau({ monitor: 'val_acc', patience: 1, factor: 0.5 })], rising)).lrs).toEqual([1, 1, 1, 1]);
    expect((await fit(new FakeModel(1), [new ReduceLROnPlateau({ monitor: 'val_acc', patience: 1, factor: 0.5, mode: 'min' })], rising)).lrs).toEqual([1, 1, 0.5, 0.25]);
    // 'val_auc' holds no 'acc': Keras 3 minimizes it (EarlyStopping would maximize it)
    const auc = series('val_auc', [0.5, 0.6, 0.7, 0.8]);
    expect((await fit(new FakeModel(1), [new ReduceLROnPlateau({ monitor: 'val_auc', patience: 1, factor: 0.5 })], auc)).lrs).toEqual([1, 1, 0.5, 0.25]);
  });

  it('warns when the monitored key is missing (learning_rate still logged); a schedule rate cannot be reduced', async () => {
    const warned: string[] = [];
    const r = await fit(new FakeModel(0.5), [new ReduceLROnPlateau({ patience: 0, warn: (s) => warned.push(s) })], [{ loss: 1, acc: 0.5 }, { loss: 1, acc: 0.5 }]);
    expect(warned).toEqual(['Learning rate reduction is conditioned on metric `val_loss` which is not available. Available metrics are: loss,acc,learning_rate.']);
    expect(r.lrs).toEqual([0.5, 0.5]);
    expect(r.logs[1].learning_rate).toBe(0.5);
    const scheduled = new FakeModel({ initialLearningRate: 0.1 });
    await expect(fit(scheduled, [new ReduceLROnPlateau({ patience: 0 })], series('val_loss', [1, 1]))).rejects.toThrow(/learning rate is a schedule, so ReduceLROnPlateau cannot change it; build the optimizer with a number learningRate/);
  });
});

describe('LearningRateScheduler', () => {
  it('sets the rate at epoch begin from schedule(epoch, lr) and logs it', async () => {
    const out = recorder();
    const got: number[] = [];
    const cb = new LearningRateScheduler((epoch, lr) => {
      got.push(lr);
      return epoch < 2 ? lr : lr * 0.5;
    }, { verbose: 1, print: out.print });
    const m = new FakeModel(0.5);
    const r = await fit(m, [cb], [{ loss: 1 }, { loss: 1 }, { loss: 1 }, { loss: 1 }]);
    expect(r.lrs).toEqual([0.5, 0.5, 0.25, 0.125]);
    expect(r.logs.map((l) => l.learning_rate)).toEqual([0.5, 0.5, 0.25, 0.125]);
    expect(got).toEqual([0.5, 0.5, 0.5, 0.25]);
    expect(out.lines).toEqual(['Epoch 1: LearningRateScheduler setting learning rate to 0.5.', 'Epoch 2: LearningRateScheduler setting learning rate to 0.5.', 'Epoch 3: LearningRateScheduler setting learning rate to 0.25.', 'Epoch 4: LearningRateScheduler setting learning rate to 0.125.']);
  });

  it('hands the schedule the float32 rate; rejects a non-number and a schedule-built optimizer', async () => {
    const got: number[] = [];
    await fit(new FakeModel(0.01), [new LearningRateScheduler((_e, lr) => (got.push(lr), lr))], [{ loss: 1 }]);
    expect(got).toEqual([0.009999999776482582]);
    await expect(fit(new FakeModel(0.01), [new LearningRateScheduler(() => 'fast' as unknown as number)], [{ loss: 1 }])).rejects.toThrow('The output of the `schedule` function should be a float. Got: fast');
    await expect(fit(new FakeModel({}), [new LearningRateScheduler((_e, lr) => lr)], [{ loss: 1 }])).rejects.toThrow(/LearningRateScheduler cannot change it/);
  });
});

describe('ModelCheckpoint', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ckpt-cb-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('save_best_only writes formatted names only on improvement, with Keras messages', async () => {
    const out = recorder();
    const filepath = join(dir, 'w.{epoch:02d}-{val_loss:.2f}.h5');
    const m = new FakeModel();
    await fit(m, [new ModelCheckpoint({ filepath, saveBestOnly: true, verbose: 1, print: out.print })], series('val_loss', [0.5, 0.6, 0.4, 0.4]));
    expect((await readdir(dir)).sort()).toEqual(['w.01-0.50.h5', 'w.03-0.40.h5']);
    expect(await readFile(join(dir, 'w.03-0.40.h5'), 'utf8')).toBe('weights after 3 epochs');
    expect(out.lines).toEqual([
      `Epoch 1: val_loss improved from inf to 0.50000, saving model to ${join(dir, 'w.01-0.50.h5')}`,
      'Epoch 2: val_loss did not improve from 0.50000',
      `Epoch 3: val_loss improved from 0.50000 to 0.40000, saving model to ${join(dir, 'w.03-0.40.h5')}`,
      'Epoch 4: val_loss did not improve from 0.40000',
    ]);
  });

  it('mode max, initial_value_threshold, and every-epoch saving', async () => {
    const out = recorder();
    const m = new FakeModel();
    await fit(m, [new ModelCheckpoint({ filepath: join(dir, 'best.h5'), monitor: 'val_acc', saveBestOnly: true, verbose: 1, print: out.print })], series('val_acc', [0.5, 0.7, 0.6]));
    expect(m.saved).toEqual([join(dir, 'best.h5'), join(dir, 'best.h5')]);
    expect(out.lines[0]).toBe(`Epoch 1: val_acc improved from -inf to 0.50000, saving model to ${join(dir, 'best.h5')}`);
    const t = new FakeModel();
    await fit(t, [new ModelCheckpoint({ filepath: join(dir, 't{epoch}.h5'), saveBestOnly: true, initialValueThreshold: 0.45 })], series('val_loss', [0.5, 0.4]));
    expect(t.saved).toEqual([join(dir, 't2.h5')]);
    const every = recorder();
    const e = new FakeModel();
    await fit(e, [new ModelCheckpoint({ filepath: join(dir, 'e{epoch:03d}-{loss:.3f}.h5'), verbose: 1, print: every.print })], series('val_loss', [0.5, 0.6]));
    expect(e.saved).toEqual([join(dir, 'e001-1.000.h5'), join(dir, 'e002-1.000.h5')]);
    expect(every.lines).toEqual([`Epoch 1: saving model to ${join(dir, 'e001-1.000.h5')}`, `Epoch 2: saving model to ${join(dir, 'e002-1.000.h5')}`]);
  });

  it('saves anyway (with a warning) when the monitored key is missing; a bad name fails at once', async () => {
    const warned: string[] = [];
    const m = new FakeModel();
    await fit(m, [new ModelCheckpoint({ filepath: join(dir, 'x.h5'), saveBestOnly: true, warn: (s) => warned.push(s) })], [{ loss: 1 }, { loss: 1 }]);
    expect(m.saved.length).toBe(2);
    expect(warned).toEqual(['Can save best model only with val_loss available.']);
    const filepath = join(dir, '{val_los:.2f}.h5');
    await expect(fit(new FakeModel(), [new ModelCheckpoint({ filepath, saveBestOnly: true })], series('val_loss', [0.5]))).rejects.toThrow(`Failed to format this callback filepath: "${filepath}". Reason: 'val_los'`);
    expect(() => new ModelCheckpoint({ filepath: 'm.keras', saveWeightsOnly: false })).toThrow(/saves weights only.*model\.loadWeights/);
    expect(() => new ModelCheckpoint({ filepath: 'm.h5', monitor: 'val_foo' })).toThrow('ModelCheckpoint callback received monitor=val_foo, but Keras');
    expect(() => new ModelCheckpoint({ filepath: 'm.h5', saveFreq: 0 })).toThrow(/saveFreq/);
  });

  it('a function target receives the weights and the epoch', async () => {
    const got: { w: number; epoch: number; loss: number }[] = [];
    const m = new FakeModel();
    await fit(m, [new ModelCheckpoint({ filepath: (w, info) => void got.push({ w: w[0].data[0], epoch: info.epoch, loss: info.logs.val_loss }), saveBestOnly: true })], series('val_loss', [0.5, 0.6, 0.4]));
    expect(got).toEqual([{ w: 1, epoch: 0, loss: 0.5 }, { w: 3, epoch: 2, loss: 0.4 }]);
    expect(m.saved).toEqual([]);
  });

  it('saveFreq in steps counts across epochs as Keras does', async () => {
    const m = new FakeModel();
    await fit(m, [new ModelCheckpoint({ filepath: join(dir, 'b{epoch}-{batch}.h5'), saveFreq: 2, monitor: 'loss' })], [{ loss: 1 }, { loss: 1 }], 3);
    expect(m.saved).toEqual([join(dir, 'b1-2.h5'), join(dir, 'b2-1.h5'), join(dir, 'b2-3.h5')]);
  });
});

describe('CSVLogger', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'csv-cb-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a header of sorted keys and one row per epoch, flushed as each epoch ends', async () => {
    const file = join(dir, 'log.csv');
    const logger = new CSVLogger(file);
    const list = new CallbackList([logger], new FakeModel());
    await list.trainBegin();
    await list.epochEnd(0, { loss: 0.5, acc: 1, val_loss: 1e-5, val_acc: 0.25 });
    expect(await readFile(file, 'utf8')).toBe('epoch,acc,loss,val_acc,val_loss\r\n0,1.0,0.5,0.25,1e-05\r\n');
    await list.epochEnd(1, { loss: 0.125, acc: 0.75, val_loss: 0.3, val_acc: 0.5, learning_rate: 0.01 });
    await list.trainEnd();
    // keys come from the first epoch; later extra keys are dropped
    expect(await readFile(file, 'utf8')).toBe('epoch,acc,loss,val_acc,val_loss\r\n0,1.0,0.5,0.25,1e-05\r\n1,0.75,0.125,0.5,0.3\r\n');
  });

  it('adds NA val_ columns without validation; append mode writes no second header; overwrite truncates', async () => {
    const file = join(dir, 'log.csv');
    await fit(new FakeModel(), [new CSVLogger(file, { separator: ';' })], [{ loss: 0.5, acc: 0.5 }]);
    expect(await readFile(file, 'utf8')).toBe('epoch;acc;loss;val_acc;val_loss\r\n0;0.5;0.5;NA;NA\r\n');
    await fit(new FakeModel(), [new CSVLogger(file, { separator: ';', append: true })], [{ loss: 0.25, acc: 0.75 }]);
    expect(await readFile(file, 'utf8')).toBe('epoch;acc;loss;val_acc;val_loss\r\n0;0.5;0.5;NA;NA\r\n0;0.75;0.25;NA;NA\r\n');
    await fit(new FakeModel(), [new CSVLogger(file)], [{ loss: 2 }]);
    expect(await readFile(file, 'utf8')).toBe('epoch,loss,val_loss\r\n0,2.0,NA\r\n');
    const fresh = join(dir, 'new.csv');
    await fit(new FakeModel(), [new CSVLogger(fresh, { append: true })], [{ loss: 2 }]);
    expect(await readFile(fresh, 'utf8')).toBe('epoch,loss,val_loss\r\n0,2.0,NA\r\n');
    expect(() => new CSVLogger(file, { separator: '::' })).toThrow(/one character/);
    await expect(fit(new FakeModel(), [new CSVLogger(join(dir, 'missing', 'log.csv'))], [{ loss: 1 }])).rejects.toThrow(/CSVLogger: cannot open/);
  });
});

describe('state across fit() calls (a resumed run)', () => {
  it('EarlyStopping and ReduceLROnPlateau given their state decide as one uninterrupted fit', async () => {
    const values = [0.9, 0.8, 0.85, 0.84, 0.83, 0.7, 0.75, 0.76];
    const logs = series('val_loss', values);
    const whole = new FakeModel();
    const es = new EarlyStopping({ patience: 3, restoreBestWeights: true });
    const pl = new ReduceLROnPlateau({ patience: 1, factor: 0.5, minDelta: 0 });
    const a = await fit(whole, [pl, es], logs);

    // the same epochs in two fits: state saved after epoch 3 (as JSON) and put into new instances
    const split = new FakeModel();
    const es1 = new EarlyStopping({ patience: 3, restoreBestWeights: true });
    const pl1 = new ReduceLROnPlateau({ patience: 1, factor: 0.5, minDelta: 0 });
    const list = new CallbackList([pl1, es1], split);
    await list.trainBegin();
    for (let e = 0; e < 3; e++) {
      split.trained = e + 1;
      await list.epochEnd(e, { ...logs[e] });
    }
    const saved = JSON.parse(JSON.stringify({ es: es1.getState(), pl: pl1.getState() }));
    const best = await (async () => {
      const keep = split.trained;
      split.trained = saved.es.bestEpoch + 1; // best/ on disk holds the best epoch's weights
      const w = await split.getWeights();
      split.trained = keep;
      return w;
    })();
    const es2 = new EarlyStopping({ patience: 3, restoreBestWeights: true });
    const pl2 = new ReduceLROnPlateau({ patience: 1, factor: 0.5, minDelta: 0 });
    es2.setState(saved.es, best);
    pl2.setState(saved.pl);
    const list2 = new CallbackList([pl2, es2], split);
    split.stopTraining = false;
    await list2.trainBegin(); // keeps the state given (a fresh fit would start over)
    let ran = 3;
    for (let e = 3; e < logs.length && !split.stopTraining; e++, ran++) {
      split.trained = e + 1;
      await list2.epochEnd(e, { ...logs[e] });
    }
    await list2.trainEnd();
    expect(ran).toBe(a.ran);
    expect(es2.stoppedEpoch).toBe(es.stoppedEpoch);
    expect(es2.bestEpoch).toBe(es.bestEpoch);
    expect(split.trained).toBe(whole.trained); // the same best epoch's weights restored
    expect(split.optimizer.learningRate).toBe(whole.optimizer.learningRate);
  });
});
