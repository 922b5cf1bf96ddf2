// Issue 15 item 3: NaN or Inf in loaded weights is refused, naming file, layer, weight and count,
// and nothing is written to the model.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conv2D, Dense, Flatten, Input, MaxPooling2D, Model, convertWeights, exportWeights, importWeights } from '../src/index.ts';
import { sameBits, writeKeras3H5, writeLegacyH5, writeNestedH5, type FixtureLayer } from './helpers/weights-h5.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reliability-nonfinite-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function smallModel(): Model {
  const input = Input({ shape: [6, 6, 3] });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input);
  x = new MaxPooling2D({ name: 'p1' }).apply(x);
  x = new Conv2D({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(x);
  x = new Flatten({ name: 'f' }).apply(x);
  x = new Dense({ units: 1, activation: 'sigmoid', name: 'd1' }).apply(x);
  return new Model({ inputs: input, outputs: x, name: 'small' });
}

/** Fixture for smallModel with 2 NaN and 1 Inf in c2's kernel (3*3*4*5 = 180 values). */
function poisonedFixture(): FixtureLayer[] {
  const w = (shape: number[], s: number) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + s)) });
  const c2 = w([3, 3, 4, 5], 3);
  c2.data[7] = NaN;
  c2.data[50] = Infinity;
  c2.data[99] = NaN;
  return [
    { name: 'c1', className: 'Conv2D', weights: [w([3, 3, 3, 4], 1), w([4], 2)] },
    { name: 'p1', className: 'MaxPooling2D', weights: [] },
    { name: 'c2', className: 'Conv2D', weights: [c2, w([5], 4)] },
    { name: 'f', className: 'Flatten', weights: [] },
    { name: 'd1', className: 'Dense', weights: [w([45, 1], 5), w([1], 6)] },
  ];
}

async function snapshot(model: Model): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const l of model.layers) for (const w of await l.getWeights()) out.push(w.data.slice());
  return out;
}

async function expectUnchanged(model: Model, before: Float32Array[]): Promise<void> {
  const after = await snapshot(model);
  expect(after.length).toBe(before.length);
  after.forEach((a, i) => expect(sameBits(a, before[i]), `array ${i}`).toBe(true));
}

describe('non-finite weights are refused', () => {
  for (const [layout, write, weightName] of [
    ['nested', writeNestedH5, 'c2/kernel:0'],
    ['legacy', writeLegacyH5, 'c2_W_1:0'],
    ['keras3', writeKeras3H5, ''],
  ] as const) {
    it(`Keras .h5 (${layout} layout) with NaN/Inf in a kernel: error names file, layer, weight, count; model unchanged`, async () => {
      const path = join(dir, `weights-${layout}.h5`);
      await write(path, poisonedFixture());
      const model = smallModel();
      const before = await snapshot(model);
      const err = await model.loadWeights(path).then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toContain(path);
      expect(err!.message).toMatch(/layer 'c2'.*weight 0 \(/);
      if (weightName) expect(err!.message).toContain(`(${weightName})`);
      expect(err!.message).toMatch(/3 of 180 values are NaN or Inf \(2 NaN, 1 Inf; first at index 7\)/);
      expect(err!.message).toMatch(/damaged or the training that wrote it diverged/);
      await expectUnchanged(model, before);
    });
  }

  it('manifest + bin with a NaN in a kernel and a valid SHA-256: refused, model unchanged', async () => {
    const good = smallModel();
    const { manifest, data } = await exportWeights(good);
    const bytes = new Uint8Array(data.slice(0));
    const t = manifest.tensors.find((x) => x.layer === 'd1' && x.shape.length === 2)!;
    new DataView(bytes.buffer).setFloat32(t.offset + 4 * 10, NaN, true);
    t.sha256 = createHash('sha256').update(bytes.subarray(t.offset, t.offset + t.byteLength)).digest('hex');
    const folder = join(dir, 'nan-manifest');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'manifest.json'), JSON.stringify(manifest));
    await writeFile(join(folder, manifest.dataFile), bytes);

    const model = smallModel();
    const before = await snapshot(model);
    const err = await model.loadWeights(folder).then(() => null, (e: Error) => e);
    expect(err?.message).not.toMatch(/SHA-256/); // the checksum passed: the scan caught it
    expect(err?.message).toMatch(new RegExp(`${folder}.*layer 'd1', weight 0 \\(${t.name}\\): 1 of 45 values are NaN or Inf`));
    await expectUnchanged(model, before);

    // The same bytes through importWeights (the checkpoint path), naming the checkpoint file.
    await expect(importWeights(model, manifest, bytes, { source: 'run/checkpoint.ckpt' })).rejects.toThrow(/^loading weights from run\/checkpoint\.ckpt: layer 'd1', weight 0 .*1 of 45 values are NaN or Inf/);
    await expect(importWeights(model, manifest, bytes)).rejects.toThrow(/manifest of 'small'.*1 of 45 values are NaN or Inf/);
    await expectUnchanged(model, before);
  });

  it('convertWeights refuses an .h5 with NaN and writes nothing', async () => {
    const path = join(dir, 'convert-me.h5');
    await writeNestedH5(path, poisonedFixture());
    const out = join(dir, 'converted');
    await expect(convertWeights(path, out)).rejects.toThrow(/convert-me\.h5: layer 'c2', weight 0 \(c2\/kernel:0\): 3 of 180 values are NaN or Inf.*nothing was written/);
    expect(await stat(out).catch(() => null)).toBeNull();
  });
});
