// Issue 15 (1): weights/, model.h5 and the weights cache (conversion and download) are written
// complete-or-nothing: a disk that fills up mid-write (short writes, then ENOSPC) keeps the
// previous files, leaves no temporary file and says the disk is full.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { atomicIo, writeFilesAtomic, type OpenFile, type WritableHandle } from '../src/io/atomic-file-node.ts';
import { downloadFile, md5File } from '../src/io/download-node.ts';
import { readKerasH5, writeKerasH5 } from '../src/io/keras-h5-node.ts';
import { imagenetWeights, readWeightsFiles, writeWeightsFiles } from '../src/io/weights-node.ts';
import type { ImagenetWeightsFile } from '../src/io/imagenet-files.ts';
import type { LayerWeights } from '../src/io/weights-manifest.ts';
import { randomFloats, writeLegacyH5, type FixtureLayer } from './helpers/weights-h5.ts';

const realOpen = atomicIo.openFile;
let dir: string;

/** A disk with room for `room` more bytes: writes of at most 300 bytes, then ENOSPC. */
function fillingDisk(room: number): OpenFile {
  return async (p: string): Promise<WritableHandle> => {
    const fh = await open(p, 'w');
    return {
      async write(buffer, offset, length) {
        if (room === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        const n = Math.min(length, room, 300);
        room -= n;
        return fh.write(buffer, offset, n);
      },
      sync: () => fh.sync(),
      stat: () => fh.stat(),
      close: () => fh.close(),
    };
  };
}

function layers(seed: number): LayerWeights[] {
  return [
    { layer: 'conv', weights: [{ name: 'conv/kernel:0', shape: [3, 3, 3, 4], data: randomFloats(108, seed) }, { name: 'conv/bias:0', shape: [4], data: randomFloats(4, seed + 1) }] },
    { layer: 'pool', weights: [] },
    { layer: 'dense', weights: [{ name: 'dense/kernel:0', shape: [16, 2], data: randomFloats(32, seed + 2) }] },
  ];
}

/** Every file under `d` (recursively) with its bytes, so "unchanged" is checked byte for byte. */
async function snapshot(d: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(d, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[join(e.parentPath, e.name).slice(d.length)] = (await readFile(join(e.parentPath, e.name))).toString('base64');
  }
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomic-writes-'));
});
afterEach(() => {
  atomicIo.openFile = realOpen;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('weights/ (manifest.json + weights.bin)', () => {
  it('a full disk while writing the data file or the manifest keeps the previous pair and no temporary file', async () => {
    const out = join(dir, 'run1', 'weights');
    await writeWeightsFiles(out, layers(1), { model: 'm' });
    const before = await snapshot(out);
    const binBytes = 144 * 4 + 32 * 4;
    // [room] fails inside weights.bin, and just after it (inside manifest.json)
    for (const room of [500, binBytes + 100]) {
      atomicIo.openFile = fillingDisk(room);
      await expect(writeWeightsFiles(out, layers(2), { model: 'm' })).rejects.toThrow(/disk full while writing .*(weights\.bin|manifest\.json) \(.* bytes\): the previous weights\.bin and manifest\.json are kept; free some space/);
      atomicIo.openFile = realOpen;
      expect(await snapshot(out)).toEqual(before);
      expect((await readdir(out)).sort()).toEqual(['manifest.json', 'weights.bin']);
      const back = await readWeightsFiles(out);
      expect(back[0].weights[0].data).toEqual(layers(1)[0].weights[0].data);
    }
    // short writes alone are retried to the end
    atomicIo.openFile = fillingDisk(1e9);
    await writeWeightsFiles(out, layers(2), { model: 'm' });
    expect((await readWeightsFiles(out))[1].weights[0].data).toEqual(layers(2)[2].weights[0].data);
  });

  it('a first save that hits a full disk leaves no files and says nothing was written', async () => {
    const out = join(dir, 'run2', 'weights');
    atomicIo.openFile = fillingDisk(100);
    await expect(writeWeightsFiles(out, layers(1), { model: 'm' })).rejects.toThrow(/disk full while writing .*weights\.bin .*: nothing was written/);
    expect(await readdir(out)).toEqual([]);
  });

  it('a renamed data file never precedes a manifest that is not yet complete (both staged first)', async () => {
    const d = join(dir, 'pair');
    await mkdir(d);
    await writeFile(join(d, 'a'), 'old a');
    await writeFile(join(d, 'b'), 'old b');
    atomicIo.openFile = fillingDisk(8);
    await expect(writeFilesAtomic([{ path: join(d, 'a'), data: 'new a' }, { path: join(d, 'b'), data: 'new b, longer' }])).rejects.toThrow(/disk full while writing .*b \(13 bytes\)/);
    expect(await readFile(join(d, 'a'), 'utf8')).toBe('old a');
    expect((await readdir(d)).sort()).toEqual(['a', 'b']);
  });
});

describe('model.h5', () => {
  it('a full disk keeps the previous model.h5, removes the temporary files and says so', async () => {
    const d = join(dir, 'h5');
    await mkdir(d);
    const path = join(d, 'model.h5');
    await writeKerasH5(path, layers(1));
    const before = await readFile(path);
    atomicIo.openFile = fillingDisk(2000);
    await expect(writeKerasH5(path, layers(2))).rejects.toThrow(/disk full while writing .*model\.h5 \(.* bytes\): the previous model\.h5 is kept/);
    atomicIo.openFile = realOpen;
    expect((await readFile(path)).equals(before)).toBe(true);
    expect(await readdir(d)).toEqual(['model.h5']);
    expect((await readKerasH5(path)).layers[0].weights[0].data).toEqual(layers(1)[0].weights[0].data);
    // short writes: the whole file arrives and reads back
    atomicIo.openFile = fillingDisk(1e9);
    await writeKerasH5(path, layers(2));
    expect((await readKerasH5(path)).layers[2].weights[0].data).toEqual(layers(2)[2].weights[0].data);
    expect(await readdir(d)).toEqual(['model.h5']);
  });
});

describe('the weights cache', () => {
  const fixture: FixtureLayer[] = [
    { name: 'block1_conv1', className: 'Conv2D', weights: [{ shape: [3, 3, 3, 4], data: randomFloats(108, 5) }, { shape: [4], data: randomFloats(4, 6) }] },
    { name: 'block1_pool', className: 'MaxPooling2D', weights: [] },
  ];
  let server: Server;
  let base: string;
  let body: Buffer;
  let md5: string;
  const savedKerasHome = process.env.KERAS_HOME;

  beforeAll(async () => {
    process.env.KERAS_HOME = join(dir, 'keras-home');
    const src = join(dir, 'served.h5');
    await writeLegacyH5(src, fixture);
    body = await readFile(src);
    md5 = await md5File(src);
    server = createServer((req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    if (savedKerasHome === undefined) delete process.env.KERAS_HOME;
    else process.env.KERAS_HOME = savedKerasHome;
    await new Promise<void>((r) => server.close(() => r()));
  });

  const file = (name: string): ImagenetWeightsFile => ({ builder: 'Tiny', fileName: `${name}.h5`, url: `${base}/${name}.h5`, md5: null, converted: `${name}-converted`, model: 'tiny' });

  it('a full disk while converting into the cache caches nothing, keeps the .h5 and says so; a later run converts', async () => {
    const cache = join(dir, 'cache1');
    await mkdir(cache);
    await writeFile(join(cache, 'tiny.h5'), body);
    atomicIo.openFile = fillingDisk(200);
    await expect(imagenetWeights(file('tiny'), { cacheDir: cache, md5, onProgress: false })).rejects.toThrow(/disk full while caching the converted Tiny weights in .*tiny-converted: nothing was cached \(.*tiny\.h5 is kept\)/);
    atomicIo.openFile = realOpen;
    expect(await readdir(cache)).toEqual(['tiny.h5']);
    const got = await imagenetWeights(file('tiny'), { cacheDir: cache, md5, onProgress: false });
    expect(got[0].weights[0].data).toEqual(fixture[0].weights[0].data);
    expect((await readdir(cache)).sort()).toEqual(['tiny-converted', 'tiny.h5']);
  });

  it('a full disk while downloading leaves no partial file and the previous file intact; short writes arrive whole', async () => {
    const d = join(dir, 'dl');
    await mkdir(d);
    const dest = join(d, 'w.h5');
    await writeFile(dest, 'previous');
    await expect(downloadFile(`${base}/w.h5`, dest, { openFile: fillingDisk(1000) })).rejects.toThrow(/disk full while writing .*w\.h5: the previous w\.h5 is kept; free some space/);
    expect(await readFile(dest, 'utf8')).toBe('previous');
    expect(await readdir(d)).toEqual(['w.h5']);
    await downloadFile(`${base}/w.h5`, dest, { md5, openFile: fillingDisk(1e9) });
    expect((await readFile(dest)).equals(body)).toBe(true);
    expect(await readdir(d)).toEqual(['w.h5']);
    // the cache path: a download into an empty cache that fills the disk caches nothing
    const cache = join(dir, 'cache2');
    atomicIo.openFile = fillingDisk(1000);
    await expect(imagenetWeights(file('tiny'), { cacheDir: cache, md5, onProgress: false })).rejects.toThrow(/Could not get the Tiny ImageNet weights: downloading .* failed: disk full .*nothing was kept/);
    expect(await readdir(cache)).toEqual([]);
  });
});
