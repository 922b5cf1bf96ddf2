// Keras's two-phase transfer-learning recipe from the command line: MobileNetV2 frozen, then
// unfrozen from a named layer with its BatchNormalization in inference mode, recompiled at a
// lower rate; one history with the boundary marked, and --resume exact inside the second phase.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/cli/checkpoint.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';
import { cliRunner } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-2phase-'));
const data = join(tmp, 'data');
const cli = cliRunner({ ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', WEBGPU_FINETUNE_CACHE: join(tmp, 'cache') });
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const args = (out: string) => ['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--base', 'mobilenet_v2', '--size', '32x32', '--batch', '4',
  '--epochs', '2', '--weights', 'none', '--seed', '4', '--optimizer', 'adam', '--fine-tune-at', 'block_15_expand', '--fine-tune-epochs', '2', '--fine-tune-lr', '1e-4', '--out', out];

beforeAll(async () => {
  await writeSampleFolders(data, { height: 32, width: 32, train: 12, test: 4, seed: 2 });
});

describe('train --fine-tune-at', () => {
  const U = join(tmp, 'U');

  it('trains the head, then fine-tunes the top of the base in the same run', async () => {
    const r = await cli(args(U));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/training: Adam lr 0\.001, then 2 fine-tuning epochs from layer block_15_expand at lr 0\.0001/);
    expect(r.stdout).toMatch(/Epoch 2\/2\n[^]*fine-tuning: the base's layers from 134 \(block_15_expand\) on unfrozen, its BatchNormalization in inference mode; Adam lr 0\.0001; epochs 3-4\nEpoch 3\/4\n/);
    const h = json(join(U, 'history.json'));
    expect(h.epoch).toEqual([0, 1, 2, 3]);
    expect(h.fineTuneFrom).toBe(2);
    expect(readFileSync(join(U, 'history.svg'), 'utf8')).toContain('fine-tuning</text>');
    expect(json(join(U, 'settings.json'))).toMatchObject({ fineTuneAt: 134, fineTuneAsked: 'block_15_expand', fineTuneEpochs: 2, fineTuneLr: 1e-4 });
    const ckpt = await readCheckpoint(join(U, 'checkpoint.ckpt'));
    expect(ckpt.state.phase).toBe(2);
    // the fine-tuning optimizer has state for the unfrozen layers of the base too
    expect(ckpt.velocities.some((v) => v.name.startsWith('block_16_project/'))).toBe(true);
  }, 180_000);

  it('kill -9 in the fine-tuning phase, then --resume: the same history and weights', async () => {
    const K = join(tmp, 'K');
    let killed = false;
    const first = await cli(args(K), (text, child) => {
      if (!killed && text.includes('Epoch 4/4') && existsSync(join(K, 'checkpoint.ckpt'))) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    expect(first.signal).toBe('SIGKILL');
    expect((await readCheckpoint(join(K, 'checkpoint.ckpt'))).state.phase).toBe(2);
    const r = await cli(['train', '--resume', K]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(join(K, 'history.json'))).toMatchObject({ epoch: [0, 1, 2, 3], fineTuneFrom: 2, history: json(join(U, 'history.json')).history });
    expect(readFileSync(join(K, 'weights', 'weights.bin')).equals(readFileSync(join(U, 'weights', 'weights.bin')))).toBe(true);
  }, 180_000);

  it('kill -9 at the phase boundary (the last checkpoint is the first phase\'s): the same result', async () => {
    const B = join(tmp, 'B');
    let killed = false;
    const first = await cli(args(B), (text, child) => {
      if (!killed && text.includes('fine-tuning:')) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    expect(first.signal).toBe('SIGKILL');
    const r = await cli(['train', '--resume', B]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(join(B, 'history.json')).history).toEqual(json(join(U, 'history.json')).history);
    expect(readFileSync(join(B, 'weights', 'weights.bin')).equals(readFileSync(join(U, 'weights', 'weights.bin')))).toBe(true);
  }, 180_000);

  it('refuses a fine-tuning layer that unfreezes nothing, and --epochs on resume of a two-phase run', async () => {
    const r = await cli([...args(join(tmp, 'X')).slice(0, -2), '--freeze', '100', '--fine-tune-at', '120', '--out', join(tmp, 'X')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--fine-tune-at 120 \(layer 120\) unfreezes nothing: the first 100 layers are frozen/);
    const e = await cli(['train', '--resume', U, '--epochs', '5']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/two-phase run/);
  }, 60_000);
});
