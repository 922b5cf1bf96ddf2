// Issue 15, beyond the list: a bounded fuzz of every file reader the command line uses. Random
// truncations and byte flips (fixed seeds) of PNG, JPEG, BMP, PNM, Keras .h5, manifest + bin and
// checkpoint files go through the CLI's entry points (checkImage + decodeRgb with readPngNode,
// readWeights, readCheckpoint), and each must end in a plain Error naming the problem (never a
// TypeError/RangeError from deep inside) or a well-formed result. The readers run in a worker
// thread so a case that hangs is stopped (and reported with its seed) instead of hanging the
// suite; the process's peak memory must stay bounded; no input file may change.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyHistory, saveCheckpoint, type TrainState } from '../src/cli/checkpoint.ts';
import { MAX_IMAGE_PIXELS } from '../src/io/image-decode.ts';
import { writeKerasH5 } from '../src/io/keras-h5-node.ts';
import { writeWeightsFiles } from '../src/io/weights-node.ts';
import { Dense, Flatten, Input, Model, SGD } from '../src/index.ts';
import { jpegRgb, pattern, pngRaw, pngRgb, pngRgba } from './io-images.ts';
import { randomFloats } from './helpers/weights-h5.ts';
import { randomArray, rng } from './helpers/random.ts';

/** A case that takes longer than this is a hang (the slowest real case takes well under a second). */
const CASE_TIMEOUT_MS = 15_000;
/** Peak resident memory may grow by at most this much over the whole fuzz (no reader may trust a huge size). */
const MAX_RSS_GROWTH_KB = 1_500_000;

const src = (p: string) => pathToFileURL(resolve(__dirname, '..', 'src', p)).href;

// The worker: plain JavaScript that registers tsx, then runs one reader per message.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const ready = (async () => {
  const { register } = await import('tsx/esm/api');
  register();
  return {
    img: await import(${JSON.stringify(src('io/image-decode.ts'))}),
    png: await import(${JSON.stringify(src('io/png-node.ts'))}),
    weights: await import(${JSON.stringify(src('io/weights.ts'))}),
    ckpt: await import(${JSON.stringify(src('cli/checkpoint.ts'))}),
  };
})();
parentPort.on('message', async ({ kind, bytes, path, maxPixels }) => {
  const m = await ready;
  try {
    let result;
    if (kind === 'image') {
      const b = new Uint8Array(bytes);
      const copy = b.slice();
      const info = m.img.checkImage(b, maxPixels);
      const rgb = m.img.decodeRgb(b, m.png.readPngNode, maxPixels);
      if (!b.every((x, i) => x === copy[i])) throw new TypeError('the decoder changed its input');
      result = { info, width: rgb.width, height: rgb.height, length: rgb.data.length };
    } else if (kind === 'weights') {
      const layers = await m.weights.readWeights(path, { onProgress: false });
      result = { layers: layers.map((l) => ({ layer: l.layer, weights: l.weights.map((w) => ({ shape: w.shape, data: Array.from(w.data) })) })) };
    } else if (kind === 'spin') {
      for (;;);
    } else if (kind === 'checkpoint') {
      const c = await m.ckpt.readCheckpoint(path);
      result = { epoch: c.state.epoch, iteration: c.iteration, bytes: c.weights.data.length, velocities: c.velocities.map((v) => v.data.length) };
    }
    parentPort.postMessage({ ok: true, result, maxRSS: process.resourceUsage().maxRSS });
  } catch (e) {
    parentPort.postMessage({ ok: false, name: e && e.constructor ? e.constructor.name : typeof e, message: String(e && e.message), maxRSS: process.resourceUsage().maxRSS });
  }
});
parentPort.postMessage({ hello: true });
`;

interface Reply { ok: boolean; result?: any; name?: string; message?: string; maxRSS: number }

class Runner {
  private worker!: Worker;
  private started!: Promise<void>;
  constructor() {
    this.start();
  }
  private start(): void {
    this.worker = new Worker(WORKER, { eval: true });
    this.started = new Promise((r) => this.worker.once('message', () => r()));
  }
  async run(msg: object, label: string, timeoutMs = CASE_TIMEOUT_MS): Promise<Reply> {
    await this.started;
    return new Promise<Reply>((resolveReply, reject) => {
      const timer = setTimeout(() => {
        this.worker.removeAllListeners('message');
        void this.worker.terminate();
        this.start();
        reject(new Error(`${label}: no answer within ${timeoutMs} ms (a hang)`));
      }, timeoutMs);
      this.worker.once('message', (r: Reply) => {
        clearTimeout(timer);
        resolveReply(r);
      });
      this.worker.postMessage(msg);
    });
  }
  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

/** A damaged copy: truncated, a few bytes flipped, or both; `header` bytes get most flips (where the sizes are). */
function mutate(b: Uint8Array, seed: number, header = 64): { bytes: Uint8Array; how: string } {
  const r = rng(seed);
  const pick = (n: number) => Math.floor(r() * n);
  let out = b.slice();
  const how: string[] = [];
  const kind = pick(4); // 0 truncate, 1 flips, 2 both, 3 header flips
  if (kind === 0 || kind === 2) {
    const at = pick(out.length);
    out = out.slice(0, at);
    how.push(`truncated to ${at}`);
  }
  if (kind >= 1 && out.length > 0) {
    const flips = 1 + pick(4);
    for (let i = 0; i < flips; i++) {
      const at = kind === 3 ? pick(Math.min(header, out.length)) : pick(out.length);
      const x = 1 + pick(255);
      out[at] ^= x;
      how.push(`byte ${at} ^= ${x}`);
    }
  }
  return { bytes: out, how: how.join(', ') };
}

const ENGINE_TEXT = /Cannot read propert|is not a function|is not iterable|Invalid typed array|Invalid array length|out of bounds|outside the bounds|Maximum call stack|Cannot convert/;

/** A clear error: a plain Error (or ours) with a message, not a JavaScript engine error from deep inside; else why not. */
function unclear(r: Reply): string | null {
  if (!['Error', 'ImageError', 'DownloadError'].includes(r.name!)) return `${r.name}: ${r.message}`;
  if (!r.message || r.message.length < 5 || /^undefined|\[object /.test(r.message)) return `unclear message ${JSON.stringify(r.message)}`;
  // an engine error's text wrapped into ours is no clearer
  if (ENGINE_TEXT.test(r.message)) return `engine error text: ${r.message}`;
  // one line of printable text: bytes of the damaged file must not be echoed to the terminal
  if (/[\u0000-\u001f\u007f-\u009f\ufffd]/.test(r.message)) return `control characters or binary bytes in ${JSON.stringify(r.message)}`;
  return null;
}

function expectClearError(r: Reply, label: string): void {
  if (process.env.FUZZ_LOG) console.log(`${label} -> ${r.name}: ${r.message}`);
  expect.soft(unclear(r), label).toBeNull();
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function bmp24(h: number, w: number, rgb: Uint8Array): Uint8Array {
  const stride = Math.ceil((w * 3) / 4) * 4;
  const out = new Uint8Array(54 + stride * h);
  const dv = new DataView(out.buffer);
  out[0] = 0x42;
  out[1] = 0x4d;
  dv.setUint32(2, out.length, true);
  dv.setUint32(10, 54, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, w, true);
  dv.setInt32(22, h, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, 24, true);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = 54 + (h - 1 - y) * stride + x * 3;
      const i = (y * w + x) * 3;
      out[p] = rgb[i + 2];
      out[p + 1] = rgb[i + 1];
      out[p + 2] = rgb[i];
    }
  }
  return out;
}

function bmp8(h: number, w: number): Uint8Array {
  const stride = Math.ceil(w / 4) * 4;
  const off = 54 + 256 * 4;
  const out = new Uint8Array(off + stride * h);
  const dv = new DataView(out.buffer);
  out.set([0x42, 0x4d]);
  dv.setUint32(2, out.length, true);
  dv.setUint32(10, off, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, w, true);
  dv.setInt32(22, -h, true); // top-down
  dv.setUint16(26, 1, true);
  dv.setUint16(28, 8, true);
  for (let i = 0; i < 256; i++) out.set([i, 255 - i, (i * 7) & 255, 0], 54 + i * 4);
  for (let i = 0; i < stride * h; i++) out[off + i] = (i * 13) & 255;
  return out;
}

const enc = (s: string) => new TextEncoder().encode(s);

let runner: Runner;
let dir: string;
let rss0: number;

beforeAll(async () => {
  runner = new Runner();
  dir = await mkdtemp(join(tmpdir(), 'fuzz-'));
  rss0 = process.resourceUsage().maxRSS;
});
afterAll(async () => {
  await runner.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('fuzz: images (checkImage + decodeRgb, as the up-front check and the loader)', () => {
  const h = 7;
  const w = 9;
  const rgb = pattern(h, w, 2);
  const seeds: [string, Uint8Array, number][] = [
    ['png rgb', pngRgb(h, w, rgb), 50],
    ['png rgba', pngRgba(h, w, rgb, (i) => (i * 30) & 255), 20],
    ['png interlaced 2-bit gray', pngRaw(h, w, { colorType: 0, depth: 2, interlaced: true, sample: (x, y) => (x + y) & 3, idatSplit: 2 }), 30],
    ['jpeg', jpegRgb(16, 16, pattern(16, 16, 3), 90), 100],
    ['bmp 24-bit', bmp24(h, w, rgb), 30],
    ['bmp 8-bit palette', bmp8(h, w), 20],
    ['pnm P6', new Uint8Array([...enc(`P6\n${w} ${h}\n255\n`), ...rgb]), 15],
    ['pnm P3', enc(`P3\n# c\n3 2\n255\n${Array.from({ length: 18 }, (_, i) => (i * 14) % 256).join(' ')}\n`), 15],
  ];
  for (const [name, good, n] of seeds) {
    it(`${name}: ${n} damaged copies end in a clear error or a well-formed image`, async () => {
      const clean = await runner.run({ kind: 'image', bytes: good, maxPixels: MAX_IMAGE_PIXELS }, `${name} intact`);
      expect(clean.ok, clean.message).toBe(true);
      for (let seed = 1; seed <= n; seed++) {
        const { bytes, how } = mutate(good, seed * 7919 + name.length, 40);
        const label = `${name} seed ${seed} (${how})`;
        const r = await runner.run({ kind: 'image', bytes, maxPixels: MAX_IMAGE_PIXELS }, label);
        if (r.ok) {
          const { info, width, height, length } = r.result;
          expect.soft([width, height], label).toEqual([info.width, info.height]);
          expect.soft(length, label).toBe(width * height * 3);
        } else {
          expectClearError(r, label);
        }
      }
    });
  }

  it('regression: jpeg seed 17 (a TypeError inside jpeg-js) is reported as a corrupt JPEG', async () => {
    const { bytes, how } = mutate(jpegRgb(16, 16, pattern(16, 16, 3), 90), 17 * 7919 + 'jpeg'.length, 40);
    expect(how).toBe('byte 172 ^= 252, byte 727 ^= 53, byte 355 ^= 152');
    const r = await runner.run({ kind: 'image', bytes, maxPixels: MAX_IMAGE_PIXELS }, 'jpeg seed 17');
    expect(r.name).toBe('ImageError');
    expect(r.message).toBe('corrupt JPEG (its image data is damaged: the decoder failed inside it)');
  });

  it('headers claiming huge sizes are refused before anything that size is allocated (regressions)', async () => {
    const huge: [string, Uint8Array, RegExp][] = [
      // plain PNM is read while checking: its samples were allocated before the pixel limit was applied
      ['plain PNM 100000x100000', enc('P3\n100000 100000\n255\n1 2 3\n'), /over the limit|truncated PNM/],
      ['plain PBM 60000x60000, no limit', enc('P1\n60000 60000\n0 1 0\n'), /truncated PNM/],
      // a 1 KB JPEG claiming 10000x10000 (under the pixel limit) made jpeg-js allocate ~1 GB before failing
      ['JPEG 10000x10000 in 900 bytes', (() => {
        const b = jpegRgb(16, 16, pattern(16, 16, 3), 90);
        for (let p = 2; p < b.length; p += 2 + ((b[p + 2] << 8) | b[p + 3])) {
          if (b[p + 1] !== 0xc0) continue;
          new DataView(b.buffer).setUint16(p + 5, 10000);
          new DataView(b.buffer).setUint16(p + 7, 10000);
          return b;
        }
        throw new Error('no SOF0 marker');
      })(), /corrupt or truncated JPEG \(its 10000x10000 frame needs at least 1,171,875 bytes of image data, the file has \d+\)/],
      ['BMP 100000x100000', (() => {
        const b = bmp24(2, 2, pattern(2, 2));
        new DataView(b.buffer).setInt32(18, 100000, true);
        new DataView(b.buffer).setInt32(22, 100000, true);
        return b;
      })(), /truncated BMP|over the limit/],
    ];
    for (const [label, bytes, re] of huge) {
      for (const maxPixels of [MAX_IMAGE_PIXELS, null]) {
        const r = await runner.run({ kind: 'image', bytes, maxPixels }, label);
        expect(r.ok, label).toBe(false);
        expectClearError(r, label);
        expect(r.message, label).toMatch(re);
      }
    }
  });
});

describe('fuzz: weights files (readWeights: .h5, manifest + bin)', () => {
  const layers = [
    { layer: 'conv', weights: [{ name: 'conv/kernel:0', shape: [3, 3, 3, 2], data: randomFloats(54, 1) }, { name: 'conv/bias:0', shape: [2], data: randomFloats(2, 2) }] },
    { layer: 'pool', weights: [] },
    { layer: 'dense', weights: [{ name: 'dense/kernel:0', shape: [8, 1], data: randomFloats(8, 3) }] },
  ];
  const flat = (ls: { weights: { data: ArrayLike<number> }[] }[]) => ls.flatMap((l) => l.weights.map((w) => Array.from(w.data)));

  it('.h5: 50 damaged copies end in a clear error or the right weights, and are not changed', async () => {
    const good = join(dir, 'good.h5');
    await writeKerasH5(good, layers);
    const bytes = new Uint8Array(await readFile(good));
    const clean = await runner.run({ kind: 'weights', path: good }, 'h5 intact');
    expect(clean.ok, clean.message).toBe(true);
    for (let seed = 1; seed <= 50; seed++) {
      const { bytes: bad, how } = mutate(bytes, seed * 104729, 512);
      const path = join(dir, `bad-${seed}.h5`);
      await writeFile(path, bad);
      const label = `h5 seed ${seed} (${how})`;
      const r = await runner.run({ kind: 'weights', path }, label);
      // a flip in padding or free space can leave a file that reads: its weights must then be the original
      if (r.ok) expect.soft(flat(r.result.layers), label).toEqual(flat(layers));
      else expectClearError(r, label);
      expect(sha(new Uint8Array(await readFile(path))), `${label}: the file changed`).toBe(sha(bad));
      await rm(path);
    }
  });

  it('manifest.json + weights.bin: 60 damaged copies end in a clear error or the right weights', async () => {
    const folder = join(dir, 'weights');
    await writeWeightsFiles(folder, layers, { model: 'm' });
    const manifest = new Uint8Array(await readFile(join(folder, 'manifest.json')));
    const bin = new Uint8Array(await readFile(join(folder, 'weights.bin')));
    const want = flat(layers);
    for (let seed = 1; seed <= 60; seed++) {
      const target = seed % 2 ? 'manifest.json' : 'weights.bin';
      const { bytes: bad, how } = mutate(target === 'manifest.json' ? manifest : bin, seed * 31337, 200);
      await writeFile(join(folder, 'manifest.json'), target === 'manifest.json' ? bad : manifest);
      await writeFile(join(folder, 'weights.bin'), target === 'weights.bin' ? bad : bin);
      const label = `${target} seed ${seed} (${how})`;
      const r = await runner.run({ kind: 'weights', path: folder }, label);
      // a flip can leave a manifest that still parses (a letter of a name): the data must then be the original
      if (r.ok) expect.soft(flat(r.result.layers), label).toEqual(want);
      else expectClearError(r, label);
      expect(sha(new Uint8Array(await readFile(join(folder, target)))), `${label}: the file changed`).toBe(sha(bad));
    }
  });
});

describe('fuzz: checkpoints (readCheckpoint, as --resume and predict)', () => {
  it('version 2 and version 1 files: 60 damaged copies end in a clear error (or, for v1, a consistent read)', async () => {
    const input = Input({ shape: [2, 2, 3] });
    const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(new Flatten().apply(input)) });
    m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy' });
    await m.trainOnBatch(randomArray(2 * 12, 1), new Float32Array([0, 1]));
    const state: TrainState = { epoch: 1, step: 0, partial: { loss: [], acc: [], size: [], seconds: 0 }, history: emptyHistory(), trainPosition: 3, valPosition: 1 };
    const good = join(dir, 'checkpoint.ckpt');
    await saveCheckpoint(good, m, state);
    const v2 = new Uint8Array(await readFile(good));
    const v1 = v2.slice(0, v2.length - 32);
    new DataView(v1.buffer).setUint32(8, 1, true);
    for (let seed = 1; seed <= 60; seed++) {
      const version = seed % 3 === 0 ? 2 : 1; // v1 (no checksum) exercises the parser itself
      const { bytes: bad, how } = mutate(version === 2 ? v2 : v1, seed * 7727, 24);
      const path = join(dir, `bad-${seed}.ckpt`);
      await writeFile(path, bad);
      const label = `checkpoint v${version} seed ${seed} (${how})`;
      const r = await runner.run({ kind: 'checkpoint', path }, label);
      if (r.ok) {
        expect.soft(version, `${label}: a damaged version 2 checkpoint was accepted`).toBe(1);
        expect(r.result.velocities.reduce((a: number, b: number) => a + b, 0) * 4 + r.result.bytes, label).toBeLessThanOrEqual(bad.length);
      } else {
        expectClearError(r, label);
      }
      expect(sha(new Uint8Array(await readFile(path))), `${label}: the file changed`).toBe(sha(bad));
      await rm(path);
    }
  });
});

describe('regressions found by the fuzz (fixed seeds above; kept here without depending on mutate())', () => {
  it('damaged bytes are named, not echoed: a PNG chunk type, a PNM header byte, JSON text', async () => {
    const png = pngRgba(3, 3, pattern(3, 3), () => 200);
    png[12] ^= 76; // png rgba seed 4: 'I' of IHDR becomes 0x05
    const r1 = await runner.run({ kind: 'image', bytes: png, maxPixels: null }, 'png type');
    expect(r1.message).toBe('corrupt PNG (CRC mismatch in the unreadable (bytes 05 48 44 52) chunk at byte 8)');
    const pnm = enc('P6\n3 \u00162\n255\n'); // pnm P6 seed 15: a control byte in the header
    const r2 = await runner.run({ kind: 'image', bytes: new Uint8Array([...pnm, ...new Uint8Array(27)]), maxPixels: null }, 'pnm header');
    expect(r2.message).toBe('corrupt PNM header (unexpected byte 0x16 at byte 5)');
    const folder = join(dir, 'binary-manifest');
    await writeWeightsFiles(folder, [{ layer: 'd', weights: [{ name: 'k', shape: [1], data: new Float32Array([1]) }] }], { model: 'm' });
    const text = await readFile(join(folder, 'manifest.json'));
    text[text.indexOf(',') + 2] = 0x8b; // manifest seed 21: a byte that is no JSON
    await writeFile(join(folder, 'manifest.json'), text);
    const r3 = await runner.run({ kind: 'weights', path: folder }, 'manifest byte');
    expect(r3.message).toMatch(/manifest\.json: not a weights manifest \(invalid JSON: [\x20-\x7e]+\)$/);
    expect(unclear(r3)).toBeNull();
  });

  it('a .h5 file without the HDF5 signature is refused as not HDF5, not parsed as a manifest (h5 seeds 28, 29)', async () => {
    const path = join(dir, 'broken.h5');
    await writeKerasH5(path, [{ layer: 'd', weights: [{ name: 'k', shape: [1], data: new Float32Array([1]) }] }]);
    const b = await readFile(path);
    b[2] ^= 144;
    await writeFile(path, b);
    const r = await runner.run({ kind: 'weights', path }, 'broken.h5');
    expect(r.message).toBe(`${path}: not an HDF5 file (no HDF5 signature); expected a Keras weights file such as vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`);
  });
});

describe('checkpoint headers damaged field by field (version 1 has no checksum: the parser must check them)', () => {
  it('each field of the header replaced by a wrong value ends in a clear error naming the checkpoint', async () => {
    const input = Input({ shape: [2, 2, 3] });
    const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(new Flatten().apply(input)) });
    m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy' });
    await m.trainOnBatch(randomArray(12, 2), new Float32Array([1]));
    const state: TrainState = { epoch: 1, step: 0, partial: { loss: [], acc: [], size: [], seconds: 0 }, history: emptyHistory(), trainPosition: 3, valPosition: 1 };
    const good = join(dir, 'fields.ckpt');
    await saveCheckpoint(good, m, state);
    const v2 = new Uint8Array(await readFile(good));
    const dv = new DataView(v2.buffer);
    const jsonLength = dv.getUint32(12, true);
    const header = JSON.parse(new TextDecoder().decode(v2.subarray(16, 16 + jsonLength)));
    const rest = v2.subarray(16 + jsonLength + ((8 - ((16 + jsonLength) % 8)) % 8), v2.length - 32);
    /** A version 1 file with `edit` applied to its header. */
    const v1With = (edit: (h: any) => void): Uint8Array => {
      const h = structuredClone(header);
      edit(h);
      const json = new TextEncoder().encode(JSON.stringify(h));
      const head = new Uint8Array(16 + json.length + ((8 - ((16 + json.length) % 8)) % 8));
      head.set(v2.subarray(0, 8));
      new DataView(head.buffer).setUint32(8, 1, true);
      new DataView(head.buffer).setUint32(12, json.length, true);
      head.set(json, 16);
      return new Uint8Array([...head, ...rest]);
    };
    const intact = join(dir, 'v1.ckpt');
    await writeFile(intact, v1With(() => {}));
    expect((await runner.run({ kind: 'checkpoint', path: intact }, 'v1 intact')).ok).toBe(true);
    const paths: string[] = ['velocities', 'velocities.0', 'velocities.0.length', 'state', 'state.epoch', 'state.partial', 'state.partial.loss', 'state.history', 'state.history.history', 'state.history.history.loss', 'state.history.epoch', 'weights', 'weights.tensors', 'weights.tensors.0', 'weights.tensors.0.shape', 'iteration'];
    const values: unknown[] = [null, 'x', -1, 1.5, [], {}, 1e300];
    let cases = 0;
    for (const at of paths) {
      for (const value of values) {
        const keys = at.split('.');
        const bytes = v1With((h) => {
          let o = h;
          for (const k of keys.slice(0, -1)) o = o[k];
          o[keys.at(-1)!] = value;
        });
        const path = join(dir, `field-${cases++}.ckpt`);
        await writeFile(path, bytes);
        const label = `${at} = ${JSON.stringify(value)}`;
        const r = await runner.run({ kind: 'checkpoint', path }, label);
        if (r.ok) {
          // a value as good as the original (an empty list of losses, an epoch of 1e300 is not)
          expect.soft(r.result.velocities.length, label).toBe(2);
        } else {
          expectClearError(r, label);
          expect.soft(r.message, label).toContain(path);
        }
        await rm(path);
      }
    }
  });
});

describe('fuzz: bounds', () => {
  it('a reader that never returns is stopped and reported, and the next case runs', async () => {
    await expect(runner.run({ kind: 'spin' }, 'spin', 1000)).rejects.toThrow(/spin: no answer within 1000 ms \(a hang\)/);
    const r = await runner.run({ kind: 'image', bytes: new Uint8Array(0), maxPixels: null }, 'after the hang');
    expect(r.message).toBe('empty file');
  });

  it('peak memory stayed bounded over every case', () => {
    expect(process.resourceUsage().maxRSS - rss0).toBeLessThan(MAX_RSS_GROWTH_KB);
  });
});
