// More than two classes through the command-line tool: train picks a categorical head from three
// class folders (Dense 3 softmax, categorical cross-entropy), predict prints the top classes
// with probabilities that sum to one, evaluate agrees with training's last validation numbers,
// and binary is refused for three folders.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from './helpers/cli.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-cat-'));
const data = join(tmp, 'data');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', WEBGPU_FINETUNE_CACHE: join(tmp, 'cache') };

const cli = cliRunner(env);

beforeAll(async () => {
  await writeSampleFolders(data, { height: 32, width: 32, train: 12, test: 6, seed: 4, classes: 3 });
});

describe('three classes from the CLI', () => {
  it('trains a softmax head, predicts the top classes, evaluates', async () => {
    const out = join(tmp, 'run');
    const r = await cli(['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--batch', '4', '--epochs', '1',
      '--weights', 'none', '--augment', 'none', '--seed', '5', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Found 12 images belonging to 3 classes.');
    expect(r.stdout).toContain('Dense(3, softmax)');
    const settings = JSON.parse(readFileSync(join(out, 'settings.json'), 'utf8'));
    expect(settings.classMode).toBe('categorical');
    expect(settings.classIndices).toEqual({ circles: 0, squares: 1, triangles: 2 });
    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
    expect(history.history.val_acc).toHaveLength(1);

    const p = await cli(['predict', '--model', out, '--json', join(data, 'test', 'triangles')]);
    expect(p.code, p.stderr).toBe(0);
    const preds = JSON.parse(p.stdout).predictions;
    expect(preds).toHaveLength(2);
    for (const q of preds) {
      expect(q.top).toHaveLength(3);
      expect(q.top.map((t: { class: string }) => t.class).sort()).toEqual(['circles', 'squares', 'triangles']);
      const sum = q.top.reduce((a: number, t: { probability: number }) => a + t.probability, 0);
      expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
      expect(q.class).toBe(q.top[0].class);
    }
    const table = await cli(['predict', '--model', out, join(data, 'test', 'circles')]);
    expect(table.stdout).toMatch(/next classes/);

    const e = await cli(['evaluate', '--model', out, '--data', join(data, 'test'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    const ev = JSON.parse(e.stdout);
    expect(ev.loss).toBeCloseTo(history.history.val_loss[0], 4);
    expect(ev.acc).toBeCloseTo(history.history.val_acc[0], 4);
    const counts = ev.confusion.counts as number[][];
    expect(counts).toHaveLength(3);
    expect(counts.flat().reduce((a, b) => a + b, 0)).toBe(ev.samples);
    expect(counts.reduce((a, row, i) => a + row[i], 0) / ev.samples).toBeCloseTo(ev.acc, 6);
  });

  it('refuses --class-mode binary for three class folders, saying what to do', async () => {
    const r = await cli(['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--class-mode', 'binary', '--weights', 'none']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--class-mode binary needs exactly two class folders.*use --class-mode categorical/);
  });
});
