// Issue 15 (2, 6, 8, 9, 10, 11) through the real CLI (child processes) on a tiny generated data
// set: a run stopped by a NaN loss before its first checkpoint writes its last good weights and
// can be resumed (from scratch) or overwritten; a refused --resume changes nothing; --out inside
// the data, --out naming a file, a fake .h5 and bad numbers are usage errors (exit 2).
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, type Run } from './helpers/cli.ts';
import { UsageError } from '../src/cli/args.ts';
import { parseTrain } from '../src/cli/train.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-rel-'));
const data = join(tmp, 'data');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', WEBGPU_FINETUNE_CACHE: join(tmp, 'cache'), WEBGPU_FINETUNE_WEIGHTS_URL: 'http://127.0.0.1:9/vgg16.h5' };

const cli = cliRunner(env);
const errorLines = (r: Run) => r.stderr.split('\n').filter((l) => l.trim() && !/artificially reduced/.test(l));
const args = (out: string, lr: string, extra: string[] = []) => ['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--batch', '4', '--epochs', '1',
  '--weights', 'none', '--lr', lr, '--seed', '7', '--out', out, ...extra];

beforeAll(async () => {
  await writeSampleFolders(data, { height: 32, width: 32, train: 12, test: 4, seed: 3 });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a run that stops before its first checkpoint', () => {
  const N = join(tmp, 'N');

  it('NaN stop: the last good weights are written and the message says where', async () => {
    const r = await cli(args(N, '1e30'));
    expect(r.code, r.stderr).toBe(1);
    const lines = errorLines(r);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/loss became NaN at epoch 1, step \d+: training stopped; the weights after the last step with a finite loss are written to .*N\/weights\/ and .*N\/model\.h5; no checkpoint was saved/);
    expect(existsSync(join(N, 'weights', 'manifest.json'))).toBe(true);
    expect(existsSync(join(N, 'model.h5'))).toBe(true);
    expect(existsSync(join(N, 'checkpoint.ckpt'))).toBe(false);
  });

  it('the same --out is refused with both ways on; --resume starts it again with its stored settings', async () => {
    const again = await cli(args(N, '1e30'));
    expect(again.code).toBe(2);
    expect(errorLines(again)).toEqual([expect.stringMatching(/already holds a run; continue it with --resume .*N, start it over with --overwrite/)]);

    const first = JSON.parse(readFileSync(join(N, 'settings.json'), 'utf8'));
    const r = await cli(['train', '--resume', N]);
    expect(r.stdout).toMatch(/note: .*N has no checkpoint yet \(the run stopped before its first epoch ended\): starting the run again from the beginning with its stored settings/);
    expect(r.stdout).toContain('Epoch 1/1');
    expect(r.code).toBe(1); // lr 1e30 again: it stops on NaN again, having trained
    expect(errorLines(r).join('\n')).toMatch(/loss became NaN at epoch 1/);
    expect(JSON.parse(readFileSync(join(N, 'settings.json'), 'utf8')).command).toEqual(first.command);
  });

  it('--overwrite starts a new run in it', async () => {
    const r = await cli(args(N, '0.05', ['--overwrite', '--max-image-pixels', '5000']));
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(readFileSync(join(N, 'settings.json'), 'utf8'));
    expect(s.lr).toBe(0.05);
    expect(s.maxImagePixels).toBe(5000);
    expect(existsSync(join(N, 'checkpoint.ckpt'))).toBe(true);
  });

  it('predict refuses an image over the run\'s pixel limit before decoding it', async () => {
    const big = join(tmp, 'big.png');
    const { pngRgb, pattern } = await import('./io-images.ts');
    writeFileSync(big, pngRgb(80, 80, pattern(80, 80))); // 6,400 pixels > the run's 5,000
    const r = await cli(['predict', '--model', N, big]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/80x80 = 6,400 pixels, over the limit of 5,000/);
    const ok = await cli(['predict', '--model', N, '--max-image-pixels', 'none', big]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('a refused --resume leaves settings.json as it was', async () => {
    const before = readFileSync(join(N, 'settings.json'));
    // the image folders changed since the run started (refused once training is set up)
    const extra = join(data, 'train', Object.keys(JSON.parse(before.toString()).classIndices)[0], 'extra.png');
    const { pngRgb, pattern } = await import('./io-images.ts');
    writeFileSync(extra, pngRgb(32, 32, pattern(32, 32, 9)));
    const r = await cli(['train', '--resume', N, '--epochs', '3']);
    expect(r.code).toBe(1);
    expect(errorLines(r).join('\n')).toMatch(/the image folders changed since the run started/);
    expect(readFileSync(join(N, 'settings.json'))).toEqual(before);
    rmSync(extra);
    // the validation folder is gone (a usage error)
    const moved = join(tmp, 'test-moved');
    cpSync(join(data, 'test'), moved, { recursive: true });
    rmSync(join(data, 'test'), { recursive: true });
    try {
      const r2 = await cli(['train', '--resume', N, '--epochs', '3']);
      expect(r2.code).toBe(2);
      expect(readFileSync(join(N, 'settings.json'))).toEqual(before);
    } finally {
      cpSync(moved, join(data, 'test'), { recursive: true });
    }
  });
});

describe('a damaged checkpoint', () => {
  it('whose weights do not fit the model is named, in one line, with what to do; settings.json is untouched', async () => {
    const N = join(tmp, 'N');
    const path = join(N, 'checkpoint.ckpt');
    const bytes = new Uint8Array(readFileSync(path));
    const n = new DataView(bytes.buffer).getUint32(12, true);
    const text = new TextDecoder().decode(bytes.subarray(16, 16 + n));
    // the first layer renamed, the checksum recomputed: a well-formed file that is not this run's
    const edited = text.replace('"layer":"block1_conv1"', '"layer":"block1_convX"');
    expect(edited).not.toBe(text);
    bytes.set(new TextEncoder().encode(edited), 16);
    bytes.set(createHash('sha256').update(bytes.subarray(0, bytes.length - 32)).digest(), bytes.length - 32);
    writeFileSync(path, bytes);
    const before = readFileSync(join(N, 'settings.json'));
    const r = await cli(['train', '--resume', N, '--epochs', '2']);
    expect(r.code).toBe(1);
    expect(errorLines(r)).toEqual([expect.stringMatching(new RegExp(`^webgpu-finetune: cannot continue from ${path}: its weights do not fit this run's model \\(.*block1_convX.*\\); restore a good copy of it, or start the run over with --overwrite$`))]);
    expect(readFileSync(join(N, 'settings.json'))).toEqual(before);
  });
});

describe('usage errors', () => {
  it('--out naming a file is exit 2 in one line', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const r = await cli(args(file, '0.01'));
    expect(r.code).toBe(2);
    expect(errorLines(r)).toEqual([`webgpu-finetune: --out '${file}' is a file, or lies under one; give a folder for the run (created if missing)`]);
  });

  it('--out inside --train or --val is refused, by real path, naming both', async () => {
    const base = ['--train', join(data, 'train'), '--val', join(data, 'test'), '--weights', 'none'];
    await expect(parseTrain([...base, '--out', join(data, 'train', 'run')])).rejects.toThrow(`--out '${join(data, 'train', 'run')}' is inside --train '${join(data, 'train')}': the run folder would become one of its class folders; choose an --out outside the data folders`);
    await expect(parseTrain([...base, '--out', join(data, 'test')])).rejects.toThrow(/is inside --val/);
    const link = join(tmp, 'link-to-val');
    symlinkSync(join(data, 'test'), link);
    await expect(parseTrain([...base, '--out', join(link, 'cats', 'deep', 'run')])).rejects.toThrow(UsageError);
    // beside the data is fine (and a name that starts with '..' is not above)
    await expect(parseTrain([...base, '--out', join(data, 'run')])).resolves.toHaveProperty('out', join(data, 'run'));
    const r = await cli(args(join(data, 'train', 'cats'), '0.01'));
    expect(r.code).toBe(2);
    expect(errorLines(r)).toEqual([expect.stringMatching(/is inside --train/)]);
  });

  it('a non-HDF5 file named .h5 for --weights says so in one line', async () => {
    const fake = join(tmp, 'fake.h5');
    writeFileSync(fake, Uint8Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) & 255));
    const r = await cli(['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--weights', fake, '--out', join(tmp, 'W')]);
    expect(r.code).toBe(2);
    expect(errorLines(r)).toEqual([`webgpu-finetune: --weights '${fake}' is not an HDF5 file (it does not start with the HDF5 signature); give a Keras .h5 weights file, an exported manifest.json (or its folder), imagenet or none`]);
    const junk = join(tmp, 'junk.bin');
    writeFileSync(junk, new Uint8Array([0, 1, 2, 200, 255]));
    await expect(parseTrain(['--train', join(data, 'train'), '--val', join(data, 'test'), '--weights', junk])).rejects.toThrow(/is neither an HDF5 file nor a manifest\.json/);
  });

  it('numbers: --momentum 1.5, --lr 0x10, --lr -1, --max-image-pixels 1e', async () => {
    const base = ['--train', join(data, 'train'), '--val', join(data, 'test'), '--weights', 'none'];
    await expect(parseTrain([...base, '--momentum', '1.5'])).rejects.toThrow("--momentum must be a number from 0 to 1, got '1.5'");
    await expect(parseTrain([...base, '--lr', '0x10'])).rejects.toThrow("--lr must be a number >= 0, got '0x10'");
    await expect(parseTrain([...base, '--max-image-pixels', '1e'])).rejects.toThrow("--max-image-pixels must be a whole number >= 1, got '1e'");
    const p = await parseTrain([...base, '--max-image-pixels', 'none', '--momentum', '1']);
    expect('settings' in p && [p.settings.maxImagePixels, p.settings.momentum]).toEqual([null, 1]);
    const r = await cli([...args(join(tmp, 'L'), '0.01'), '--lr', '-1']);
    expect(r.code).toBe(2);
    expect(errorLines(r)).toEqual(["webgpu-finetune: --lr must be a number >= 0, got '-1'"]);
  });
});
