// Keras HDF5 from and to bytes (the browser path: h5wasm's browser build on its in-memory file
// system), checked against the Node reader on the same files.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKerasH5Bytes, writeKerasH5Bytes } from '../src/io/keras-h5-browser.ts';
import { readKerasH5 } from '../src/io/keras-h5-node.ts';
import { randomFloats, sameBits, writeKeras3H5, writeLegacyH5, type FixtureLayer } from './helpers/weights-h5.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weights-h5-bytes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fixture: FixtureLayer[] = [
  { name: 'c1', className: 'Conv2D', weights: [{ shape: [3, 3, 3, 4], data: randomFloats(108, 1) }, { shape: [4], data: randomFloats(4, 2) }] },
  { name: 'p1', className: 'MaxPooling2D', weights: [] },
  { name: 'd1', className: 'Dense', weights: [{ shape: [16, 2], data: randomFloats(32, 3) }, { shape: [2], data: randomFloats(2, 4) }] },
];

type Read = Awaited<ReturnType<typeof readKerasH5>>;
function expectSame(a: Read, b: Read): void {
  expect(a.layout).toBe(b.layout);
  expect(a.layers.map((l) => [l.layer, l.path, l.weights.map((w) => [w.name, w.shape])])).toEqual(b.layers.map((l) => [l.layer, l.path, l.weights.map((w) => [w.name, w.shape])]));
  a.layers.forEach((l, i) => l.weights.forEach((w, j) => expect(sameBits(w.data, b.layers[i].weights[j].data)).toBe(true)));
}

describe('Keras HDF5 as bytes', () => {
  it('reads the legacy and Keras 3 layouts exactly as the Node reader does', async () => {
    for (const [name, write] of [['legacy.h5', writeLegacyH5], ['k3.weights.h5', writeKeras3H5]] as const) {
      const path = join(dir, name);
      await write(path, fixture);
      const bytes = new Uint8Array(await readFile(path));
      expectSame(await readKerasH5Bytes(bytes, name), await readKerasH5(path));
    }
  });

  it('writes files the Node reader loads bit for bit (Keras\'s legacy layout with nested names)', async () => {
    const layers = fixture.map((l) => ({ layer: l.name, weights: l.weights.map((w, i) => ({ name: `${l.name}/${i ? 'bias' : 'kernel'}:0`, ...w })) }));
    const bytes = await writeKerasH5Bytes(layers);
    const path = join(dir, 'written.h5');
    await writeFile(path, bytes);
    const back = await readKerasH5(path);
    expect(back.layout).toBe('nested');
    expect(back.layers.map((l) => l.layer)).toEqual(['c1', 'p1', 'd1']);
    back.layers.forEach((l, i) => l.weights.forEach((w, j) => expect(sameBits(w.data, fixture[i].weights[j].data)).toBe(true)));
    expectSame(await readKerasH5Bytes(bytes), back);
  });

  it('rejects bytes that are not HDF5, and names the file', async () => {
    await expect(readKerasH5Bytes(new TextEncoder().encode('hello, not HDF5'), 'notes.h5')).rejects.toThrow(/notes\.h5: not an HDF5 file/);
    await expect(writeKerasH5Bytes([{ layer: 'a/b', weights: [] }])).rejects.toThrow(/cannot be an HDF5 group name/);
  });
});
