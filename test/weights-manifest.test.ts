import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Conv2D,
  Dense,
  Flatten,
  Input,
  Model,
  buildWeightsManifest,
  exportWeights,
  importWeights,
  loadLayerWeights,
  parseWeightsManifest,
  readWeightsData,
  type LayerWeights,
  type WeightsManifest,
} from '../src/index.ts';
import { sameBits } from './helpers/weights-h5.ts';
import { randomArray } from './helpers/random.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weights-manifest-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tinyModel(name = 'tiny'): Model {
  const input = Input({ shape: [4, 5, 3] });
  let x = new Conv2D({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }).apply(input);
  x = new Flatten({ name: 'flat' }).apply(x);
  x = new Dense({ units: 1, activation: 'sigmoid', name: 'out' }).apply(x);
  return new Model({ inputs: input, outputs: x, name });
}

async function expectSameWeights(a: Model, b: Model): Promise<void> {
  for (let i = 0; i < a.layers.length; i++) {
    const wa = await a.layers[i].getWeights();
    const wb = await b.layers[i].getWeights();
    expect(wb.map((w) => w.shape)).toEqual(wa.map((w) => w.shape));
    wa.forEach((w, j) => expect(sameBits(w.data, wb[j].data), `${a.layers[i].name} weight ${j}`).toBe(true));
  }
}

function sampleLayers(): LayerWeights[] {
  const special = new Float32Array([0, -0, Infinity, -Infinity, 1e-45, 3.4e38]);
  const nan = new Float32Array(2);
  new Uint32Array(nan.buffer).set([0x7fc00001, 0xffc12345]); // NaNs with payloads keep their bits
  return [
    { layer: 'a', weights: [{ name: 'a/kernel:0', shape: [2, 3], data: special }, { name: 'a/bias:0', shape: [2], data: nan }] },
    { layer: 'b', path: 'layers/dense', weights: [{ name: 'b/kernel:0', shape: [3, 1, 2], data: randomArray(6, 1) }] },
  ];
}

describe('weights manifest', () => {
  it('round-trips layers through manifest + buffer bit for bit, with offsets, sizes and hashes', async () => {
    const layers = sampleLayers();
    const { manifest, data } = await buildWeightsManifest(layers, { model: 'm', source: { note: 'test' } });
    expect(manifest).toMatchObject({ format: 'webgpu-finetune-weights', formatVersion: 1, model: 'm', dataFile: 'weights.bin', byteLength: 56, source: { note: 'test' } });
    expect(manifest.tensors.map((t) => [t.layer, t.name, t.offset, t.byteLength, t.path])).toEqual([
      ['a', 'a/kernel:0', 0, 24, undefined],
      ['a', 'a/bias:0', 24, 8, undefined],
      ['b', 'b/kernel:0', 32, 24, 'layers/dense'],
    ]);
    // The .bin is plain little-endian float32, in order.
    expect(sameBits(new Float32Array(data.slice(0, 24)), layers[0].weights[0].data)).toBe(true);
    const parsed = parseWeightsManifest(JSON.parse(JSON.stringify(manifest)));
    expect(parsed).toEqual(manifest);
    const back = await readWeightsData(parsed, data);
    expect(back.map((l) => [l.layer, l.path, l.weights.map((w) => w.shape)])).toEqual(layers.map((l) => [l.layer, l.path, l.weights.map((w) => w.shape)]));
    back.forEach((l, i) => l.weights.forEach((w, j) => expect(sameBits(w.data, layers[i].weights[j].data)).toBe(true)));
  });

  it('treats manifests as untrusted: names, paths, offsets, lengths, overlaps, layout, hashes', async () => {
    const { manifest, data } = await buildWeightsManifest(sampleLayers(), { model: 'm' });
    const mutate = (f: (m: any) => void) => {
      const m = JSON.parse(JSON.stringify(manifest));
      f(m);
      return () => parseWeightsManifest(m, 'evil.json');
    };
    expect(mutate((m) => (m.dataFile = '../secret.bin'))).toThrow(/evil.json: dataFile must be a plain file name/);
    expect(mutate((m) => (m.dataFile = '/etc/passwd'))).toThrow(/plain file name/);
    expect(mutate((m) => (m.dataFile = 'sub/w.bin'))).toThrow(/plain file name/);
    expect(mutate((m) => (m.dataFile = '..'))).toThrow(/plain file name/);
    expect(mutate((m) => (m.dataFile = 'C:\\w.bin'))).toThrow(/plain file name/);
    expect(mutate((m) => (m.tensors[2].offset = 40))).toThrow(/tensor 2 \(b b\/kernel:0\): bytes 40..64 lie outside the data file \(56 bytes\)/);
    expect(mutate((m) => (m.tensors[0].offset = -4))).toThrow(/offset must be a non-negative multiple of 4/);
    expect(mutate((m) => (m.tensors[0].offset = 2))).toThrow(/multiple of 4/);
    expect(mutate((m) => (m.tensors[0].byteLength = 20))).toThrow(/byteLength 20 does not match shape \[2, 3\]/);
    expect(mutate((m) => (m.tensors[1].offset = 16))).toThrow(/overlaps/);
    expect(mutate((m) => (m.tensors[0].shape = [2, -3]))).toThrow(/shape must be/);
    expect(mutate((m) => (m.tensors[0].shape = [1e300]))).toThrow(/shape must be|byteLength/);
    expect(mutate((m) => (m.tensors[0].dtype = 'float16'))).toThrow(/dtype must be 'float32'/);
    expect(mutate((m) => (m.tensors[0].sha256 = 'xyz'))).toThrow(/sha256/);
    expect(mutate((m) => (m.byteLength = 2 ** 60))).toThrow(/byteLength/);
    expect(mutate((m) => (m.formatVersion = 2))).toThrow(/formatVersion 2 is not supported/);
    expect(mutate((m) => (m.format = 'other'))).toThrow(/format must be/);
    expect(mutate((m) => m.tensors.push({ ...m.tensors[0], offset: 0, name: 'again' }))).toThrow(/overlaps|not contiguous/);
    expect(() => parseWeightsManifest([], 'x')).toThrow(/expected a JSON object/);

    // Interleaved layers cannot be matched by order.
    const three = await buildWeightsManifest([
      { layer: 'a', weights: [{ name: 'k', shape: [1], data: new Float32Array(1) }] },
      { layer: 'b', weights: [{ name: 'k', shape: [1], data: new Float32Array(1) }] },
      { layer: 'c', weights: [{ name: 'k', shape: [1], data: new Float32Array(1) }] },
    ], { model: 'm' });
    const interleaved = JSON.parse(JSON.stringify(three.manifest));
    interleaved.tensors[2].layer = 'a';
    expect(() => parseWeightsManifest(interleaved)).toThrow(/tensors of layer 'a' are not contiguous/);

    // Data that does not match its manifest.
    await expect(readWeightsData(manifest, data.slice(0, 52))).rejects.toThrow(/has 52 bytes but the manifest describes 56/);
    const damaged = new Uint8Array(data.slice(0));
    damaged[40] ^= 1;
    await expect(readWeightsData(manifest, damaged)).rejects.toThrow(/b b\/kernel:0 is damaged: its SHA-256 is [0-9a-f]{64}, the manifest says/);
  });

  it('model.saveWeights / loadWeights: a folder, or a .json path with its .bin beside it', async () => {
    const a = tinyModel();
    const b = tinyModel();
    await a.saveWeights(join(dir, 'saved'));
    expect((await readdir(join(dir, 'saved'))).sort()).toEqual(['manifest.json', 'weights.bin']);
    const manifest: WeightsManifest = JSON.parse(await readFile(join(dir, 'saved', 'manifest.json'), 'utf8'));
    expect(manifest.model).toBe('tiny');
    expect(manifest.tensors.map((t) => t.name)).toEqual(['conv/kernel:0', 'conv/bias:0', 'out/kernel:0', 'out/bias:0']);
    await b.loadWeights(join(dir, 'saved'));
    await expectSameWeights(a, b);

    const c = tinyModel();
    await a.saveWeights(join(dir, 'json', 'my model.json'));
    expect((await readdir(join(dir, 'json'))).sort()).toEqual(['my model.json', 'my_model.bin']);
    await c.loadWeights(join(dir, 'json', 'my model.json'));
    await expectSameWeights(a, c);

    // A .h5 path saves Keras's HDF5 layout instead.
    const d = tinyModel();
    await a.saveWeights(join(dir, 'h5', 'w.h5'));
    await d.loadWeights(join(dir, 'h5', 'w.h5'));
    await expectSameWeights(a, d);
  });

  it('rejects a manifest on disk that points outside its folder, and a truncated data file', async () => {
    const a = tinyModel();
    await a.saveWeights(join(dir, 'evil'));
    const path = join(dir, 'evil', 'manifest.json');
    const m = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(join(dir, 'secret.bin'), new Uint8Array(m.byteLength));
    await writeFile(path, JSON.stringify({ ...m, dataFile: '../secret.bin' }));
    await expect(tinyModel().loadWeights(join(dir, 'evil'))).rejects.toThrow(/dataFile must be a plain file name/);

    await a.saveWeights(join(dir, 'short'));
    await truncate(join(dir, 'short', 'weights.bin'), 10);
    await expect(tinyModel().loadWeights(join(dir, 'short'))).rejects.toThrow(/weights.bin: 10 bytes, but manifest.json describes \d+: truncated/);

    await mkdir(join(dir, 'empty'));
    await expect(tinyModel().loadWeights(join(dir, 'empty'))).rejects.toThrow(/has no manifest.json/);
    await expect(tinyModel().loadWeights(join(dir, 'nothing-here'))).rejects.toThrow(/does not exist/);
  });

  it('exportWeights / importWeights: the platform-free pair (manifest object + ArrayBuffer)', async () => {
    const a = tinyModel();
    const { manifest, data } = await exportWeights(a);
    const b = tinyModel();
    await importWeights(b, JSON.parse(JSON.stringify(manifest)), data);
    await expectSameWeights(a, b);
  });

  it('loadLayerWeights checks everything before writing anything', async () => {
    const m = tinyModel();
    const before = await m.layers[1].getWeights();
    const entries: LayerWeights[] = [
      { layer: 'conv', weights: [{ name: 'k', shape: [3, 3, 3, 2], data: new Float32Array(54).fill(1) }, { name: 'b', shape: [2], data: new Float32Array(2) }] },
      { layer: 'out', weights: [{ name: 'k', shape: [40, 2], data: new Float32Array(80) }, { name: 'b', shape: [1], data: new Float32Array(1) }] },
    ];
    await expect(loadLayerWeights(m, entries)).rejects.toThrow(/layer 'out', weight 0 \(out\/kernel\): expected shape \[40, 1\], found \[40, 2\]/);
    expect(sameBits((await m.layers[1].getWeights())[0].data, before[0].data)).toBe(true);
  });
});

describe('weights over HTTP', () => {
  let server: Server;
  let base: string;
  let extra = false;
  beforeAll(async () => {
    const a = tinyModel('served');
    await a.saveWeights(join(dir, 'www', 'w'));
    server = createServer(async (req, res) => {
      const path = join(dir, 'www', decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      try {
        let body = await readFile(path);
        if (extra && path.endsWith('.bin')) body = Buffer.concat([body, Buffer.alloc(8)]);
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } catch {
        res.writeHead(404).end('not found');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('loads a manifest URL or its folder URL, with progress, bit for bit', async () => {
    const saved = tinyModel('served');
    await saved.loadWeights(join(dir, 'www', 'w'));
    const b = tinyModel();
    await b.loadWeights(`${base}/w/manifest.json`);
    await expectSameWeights(saved, b);
    const c = tinyModel();
    const seen: { loaded: number; total: number | null }[] = [];
    const { readWeights } = await import('../src/index.ts');
    await loadLayerWeights(c, await readWeights(`${base}/w/`, { onProgress: (p) => seen.push(p) }));
    await expectSameWeights(saved, c);
    expect(seen[0].loaded).toBe(0);
    expect(seen[seen.length - 1].loaded).toBe(seen[seen.length - 1].total);
  });

  it('fails clearly on a missing manifest and on a data file longer than its manifest says', async () => {
    await expect(tinyModel().loadWeights(`${base}/nope/manifest.json`)).rejects.toThrow(/could not fetch the weights manifest .*nope\/manifest.json: HTTP 404/);
    extra = true;
    try {
      await expect(tinyModel().loadWeights(`${base}/w/manifest.json`)).rejects.toThrow(/more than the \d+ bytes its manifest describes/);
    } finally {
      extra = false;
    }
  });
});
