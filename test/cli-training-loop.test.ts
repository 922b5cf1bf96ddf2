// The Keras training loop from the command line: Adam with a cosine schedule, early stopping,
// a plateau schedule, balanced class weights and AUC on a tiny generated set, and --resume after
// Ctrl-C mid-epoch and after kill -9 giving the uninterrupted run's history and weights exactly
// (optimizer moments, schedule position, learning rate, callback state and metric sums all in
// the checkpoint).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/cli/checkpoint.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';
import { cliRunner, type Run } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-loop-'));
const data = join(tmp, 'data');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', WEBGPU_FINETUNE_CACHE: join(tmp, 'cache') };

const cli = cliRunner(env);
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const args = (out: string) => ['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--batch', '4', '--epochs', '3',
  '--weights', 'none', '--seed', '5', '--freeze', '17', '--optimizer', 'adam', '--lr', '0.002', '--lr-schedule', 'cosine', '--warmup-epochs', '1',
  '--early-stopping', '1', '--class-weight', 'balanced', '--metrics', 'acc,auc', '--out', out];
/** A constant rate lowered by ReduceLROnPlateau, momentum state, best/ kept. */
const plateauArgs = (out: string) => ['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--batch', '4', '--epochs', '3',
  '--weights', 'none', '--seed', '6', '--freeze', '17', '--optimizer', 'rmsprop', '--momentum', '0.5', '--lr', '0.01', '--reduce-lr-on-plateau', '0',
  '--save-best', '--metrics', 'acc,precision,recall', '--out', out];

beforeAll(async () => {
  // unbalanced on purpose: 8 circles, 4 squares (3 steps of 4), 4 validation images
  await writeSampleFolders(data, { height: 32, width: 32, train: 16, test: 4, seed: 9 });
  const squares = join(data, 'train', 'squares');
  for (const f of readdirSync(squares).sort().slice(4)) rmSync(join(squares, f));
});

describe('train with the Keras training loop', () => {
  const U = join(tmp, 'U');
  let u: Run;

  it('prints what it uses, AUC in every epoch line, Keras callback lines, and records it all', async () => {
    u = await cli(args(U));
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/training: Adam lr 0\.002, cosine schedule over 3 epochs after 1 warmup, early stopping \(val_loss, patience 1, best weights restored\), metrics acc, auc/);
    // sklearn's balanced: 12 / (2 * 8) and 12 / (2 * 4)
    expect(u.stdout).toContain('class weights (balanced): circles 0.75, squares 1.5');
    expect(u.stdout).toMatch(/- loss: \d\.\d{4} - acc: \d\.\d{4} - auc: \d\.\d{4} - val_loss: \d\.\d{4} - val_acc: \d\.\d{4} - val_auc: \d\.\d{4}\n/);
    const h = json(join(U, 'history.json'));
    expect(Object.keys(h.history).sort()).toEqual(['acc', 'auc', 'loss', 'val_acc', 'val_auc', 'val_loss']);
    expect(json(join(U, 'settings.json'))).toMatchObject({ optimizer: 'adam', lrSchedule: 'cosine', classWeightAsked: 'balanced', classWeight: { 0: 0.75, 1: 1.5 }, metrics: ['acc', 'auc'] });
    // EarlyStopping restores the best val_loss epoch (also when it did not stop early)
    const best = h.history.val_loss.indexOf(Math.min(...h.history.val_loss));
    expect(u.stdout).toContain(`Restoring model weights from the end of the best epoch: ${best + 1}.`);
    expect(u.stdout).toContain(`Best val_loss ${h.history.val_loss[best].toFixed(4)} at epoch ${best + 1}`);
    expect(existsSync(join(U, 'best', 'manifest.json'))).toBe(true);
    if (h.epoch.length < 3) expect(u.stdout).toMatch(new RegExp(`Epoch ${h.epoch.length}: early stopping`));
    // the restored weights are best/'s, and those are the final weights
    expect(readFileSync(join(U, 'weights', 'weights.bin')).equals(readFileSync(join(U, 'best', 'weights.bin')))).toBe(true);
  }, 240_000);

  it('Ctrl-C in epoch 2, then --resume: the same history and weights', async () => {
    const C = join(tmp, 'C');
    let sent = false;
    const first = await cli(args(C), (text, child) => {
      if (!sent && /Epoch 2\/3/.test(text)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(first.code, first.stderr).toBe(130);
    const ckpt = await readCheckpoint(join(C, 'checkpoint.ckpt'));
    expect(ckpt.optimizer).toBe('Adam');
    expect(ckpt.velocities.map((v) => v.name).some((n) => n.endsWith('/velocity'))).toBe(true);
    const r = await cli(['train', '--resume', C]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(join(C, 'history.json')).history).toEqual(json(join(U, 'history.json')).history);
    expect(readFileSync(join(C, 'weights', 'weights.bin')).equals(readFileSync(join(U, 'weights', 'weights.bin')))).toBe(true);
  }, 240_000);

  it('kill -9 after epoch 1, then --resume: the same history and weights', async () => {
    const K = join(tmp, 'K');
    let killed = false;
    const first = await cli(args(K), (text, child) => {
      if (!killed && text.includes('Epoch 2/3') && existsSync(join(K, 'checkpoint.ckpt'))) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    expect(first.signal).toBe('SIGKILL');
    const r = await cli(['train', '--resume', K]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(join(K, 'history.json')).history).toEqual(json(join(U, 'history.json')).history);
    expect(readFileSync(join(K, 'weights', 'weights.bin')).equals(readFileSync(join(U, 'weights', 'weights.bin')))).toBe(true);
  }, 240_000);

  it('ReduceLROnPlateau and --save-best: the lowered rate and the plateau state survive kill -9', async () => {
    const P = join(tmp, 'P');
    const whole = await cli(plateauArgs(P));
    expect(whole.code, whole.stderr).toBe(0);
    const h = json(join(P, 'history.json'));
    // patience 0: every epoch without improvement lowers the rate tenfold (logged before lowering, as Keras)
    expect(h.history.learning_rate[0]).toBeCloseTo(0.01, 7);
    expect(h.history.learning_rate.every((r: number, i: number) => i === 0 || r <= h.history.learning_rate[i - 1])).toBe(true);
    expect(Object.keys(h.history)).toEqual(expect.arrayContaining(['precision', 'recall', 'val_precision', 'val_recall']));
    expect(whole.stdout).toMatch(/Epoch 1: val_loss improved from inf to \d\.\d{5}, saving model to .*best/);
    expect(existsSync(join(P, 'best', 'weights.bin'))).toBe(true);
    const K = join(tmp, 'PK');
    let killed = false;
    const first = await cli(plateauArgs(K), (text, child) => {
      if (!killed && text.includes('Epoch 3/3') && existsSync(join(K, 'checkpoint.ckpt'))) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    expect(first.signal).toBe('SIGKILL');
    const r = await cli(['train', '--resume', K]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(join(K, 'history.json')).history).toEqual(h.history);
    expect(readFileSync(join(K, 'weights', 'weights.bin')).equals(readFileSync(join(P, 'weights', 'weights.bin')))).toBe(true);
    expect(readFileSync(join(K, 'best', 'weights.bin')).equals(readFileSync(join(P, 'best', 'weights.bin')))).toBe(true);
  }, 240_000);

  it('refuses flags that do not fit together, saying what to do', async () => {
    const bad = async (extra: string[], re: RegExp) => {
      const r = await cli(['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--weights', 'none', '--out', join(tmp, 'X'), ...extra]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
    };
    await bad(['--optimizer', 'adagrad'], /--optimizer must be sgd or adam or adamw or rmsprop/);
    await bad(['--optimizer', 'adam', '--momentum', '0.9'], /--momentum is SGD's and RMSprop's/);
    await bad(['--warmup-epochs', '2'], /--warmup-epochs needs --lr-schedule cosine/);
    await bad(['--lr-schedule', 'cosine', '--reduce-lr-on-plateau', '2'], /--reduce-lr-on-plateau changes a constant rate/);
    await bad(['--metrics', 'acc,top_k_categorical_accuracy'], /--metrics: .*auc/);
    await bad(['--class-weight', 'dogs:2'], /--class-weight must be none, balanced, or CLASS:WEIGHT pairs .*circles, squares/);
  }, 120_000);
});
