// Issue 15 (10, 11): one-line messages that say what to do: the run folder (a file in the way,
// a read-only disk), damaged weights inside a checkpoint, and strict number parsing.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { int, num, parse, UsageError } from '../src/cli/args.ts';
import { emptyHistory, readCheckpoint, restoreCheckpoint, saveCheckpoint, type TrainState } from '../src/cli/checkpoint.ts';
import { makeRunFolder } from '../src/cli/train.ts';
import { Dense, Flatten, Input, Model, SGD } from '../src/index.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'msg-'));
  dirs.push(d);
  return d;
}
const errno = (code: string) => Object.assign(new Error(`${code}: failed`), { code });

describe('run folder errors', () => {
  it('a file in the way is a usage error naming it', async () => {
    const d = await temp();
    await writeFile(join(d, 'file'), 'x');
    for (const out of [join(d, 'file'), join(d, 'file', 'run')]) {
      const e = await makeRunFolder(out).catch((x: Error) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).toBe(`--out '${out}' is a file, or lies under one; give a folder for the run (created if missing)`);
    }
  });

  it('a read-only disk says so, also when mkdir reports ENOENT for a missing parent', async () => {
    const d = await temp();
    const out = join(d, 'missing', 'run');
    const readOnly = /^cannot create the run folder '.*missing\/run': the file system is read-only; choose an --out on a writable disk$/;
    await expect(makeRunFolder(out, async () => { throw errno('EROFS'); })).rejects.toThrow(readOnly);
    let asked = '';
    const e = await makeRunFolder(out, async () => { throw errno('ENOENT'); }, async (dir) => { asked = dir; throw errno('EROFS'); }).catch((x: Error) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(readOnly);
    expect(asked).toBe(d); // the nearest folder that exists
    await expect(makeRunFolder(out, async () => { throw errno('EACCES'); })).rejects.toThrow(/permission denied; choose an --out you can write to/);
    // a real missing parent on a writable disk is simply created
    await makeRunFolder(out);
    await makeRunFolder(out);
  });
});

describe('damaged weights inside a checkpoint', () => {
  it('are refused naming the checkpoint file', async () => {
    const input = Input({ shape: [4, 4, 3] });
    const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(new Flatten().apply(input)) });
    m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy' });
    const state: TrainState = { epoch: 1, step: 0, partial: { loss: [], acc: [], size: [], seconds: 0 }, history: emptyHistory(), trainPosition: 0, valPosition: 0 };
    const d = await temp();
    const path = join(d, 'checkpoint.ckpt');
    await saveCheckpoint(path, m, state);
    const bytes = new Uint8Array(await readFile(path));
    const jsonLength = new DataView(bytes.buffer).getUint32(12, true);
    const dataAt = 16 + jsonLength + ((8 - ((16 + jsonLength) % 8)) % 8);
    // a NaN in the kernel, with the checksum recomputed (a bug, not a flipped bit)
    const poisoned = bytes.slice();
    new DataView(poisoned.buffer).setFloat32(dataAt + 8, NaN, true);
    poisoned.set(createHash('sha256').update(poisoned.subarray(0, poisoned.length - 32)).digest(), poisoned.length - 32);
    await writeFile(path, poisoned);
    const ckpt = await readCheckpoint(path);
    const e = await restoreCheckpoint(m, ckpt, path).catch((x: Error) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toContain(path);
    expect((e as Error).message).not.toContain('\n');
  });
});

describe('strict numbers (--lr 0x10, 1e, 12abc, empty)', () => {
  it('refuses what Number() would read, and takes only decimal numbers', () => {
    for (const bad of ['0x10', '1e', '12abc', '', ' ', '0b1', 'Infinity', 'NaN', '1_000', ' 1']) {
      expect(() => num(bad, 'lr', 0.01), bad).toThrow(UsageError);
      expect(() => int(bad, 'batch', 32), bad).toThrow(UsageError);
    }
    expect(() => int('', 'seed', 0, 0)).toThrow("--seed must be a whole number >= 0, got ''");
    expect(() => num('0x10', 'lr', 0.01)).toThrow("--lr must be a number >= 0, got '0x10'");
    expect(num('1e-3', 'lr', 0.01)).toBe(0.001);
    expect(num('.5', 'lr', 0.01)).toBe(0.5);
    expect(num('2.', 'lr', 0.01)).toBe(2);
    expect(int('007', 'batch', 32)).toBe(7);
    expect(() => int('1.5', 'batch', 32)).toThrow(UsageError);
    expect(() => int('1e3', 'batch', 32)).toThrow(UsageError);
    expect(() => int('99999999999999999999', 'seed', 0, 0)).toThrow(UsageError);
  });

  it('momentum is refused outside [0, 1], as Keras', () => {
    expect(num('1', 'momentum', 0, 1)).toBe(1);
    expect(num('0', 'momentum', 0, 1)).toBe(0);
    expect(() => num('1.5', 'momentum', 0, 1)).toThrow("--momentum must be a number from 0 to 1, got '1.5'");
  });

  it('a negative number after a flag reaches the check instead of being taken for a flag', () => {
    const options = { lr: { type: 'string' as const }, nesterov: { type: 'boolean' as const } };
    const { values } = parse('train', ['--lr', '-1'], options);
    expect(values.lr).toBe('-1');
    expect(() => num(values.lr, 'lr', 0.01)).toThrow("--lr must be a number >= 0, got '-1'");
    expect(parse('train', ['--lr', '-.5', '--nesterov'], options).values).toMatchObject({ lr: '-.5', nesterov: true });
    expect(parse('train', ['--lr=-2'], options).values.lr).toBe('-2');
    // a flag is still a flag
    expect(() => parse('train', ['--lr', '--nesterov'], options)).toThrow(UsageError);
  });
});
