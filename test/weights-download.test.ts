import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VGG16 } from '../src/index.ts';
import { downloadFile, md5File } from '../src/io/download-node.ts';
import { imagenetVgg16Weights, VGG16_NOTOP } from '../src/io/weights-node.ts';
import { sameBits, vgg16Fixture, writeLegacyH5, type FixtureLayer } from './helpers/weights-h5.ts';

let dir: string;
let server: Server;
let base: string;
let closedUrl: string;
let vggFile: string;
let vggMd5: string;
let fixture: FixtureLayer[];
let requests = 0;
const savedKerasHome = process.env.KERAS_HOME;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weights-download-'));
  // Keras's own cache is consulted too: point it at an empty folder so this machine's is never used.
  process.env.KERAS_HOME = join(dir, 'keras-home');
  fixture = vgg16Fixture(3);
  vggFile = join(dir, 'served.h5');
  await writeLegacyH5(vggFile, fixture);
  vggMd5 = await md5File(vggFile);
  const body = await readFile(vggFile);
  server = createServer((req, res) => {
    requests++;
    if (req.url === '/vgg16.h5') {
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
      res.end(body);
    } else if (req.url === '/cut.h5') {
      // Promise the whole file, send half, then drop the connection.
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nobody listens on: what "no network" looks like, without touching the network.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/vgg16.h5`;
  await new Promise<void>((r) => probe.close(() => r()));
});

afterAll(async () => {
  if (savedKerasHome === undefined) delete process.env.KERAS_HOME;
  else process.env.KERAS_HOME = savedKerasHome;
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

async function fresh(name: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

async function expectVgg(model: Awaited<ReturnType<typeof VGG16>>): Promise<void> {
  const convs = fixture.filter((l) => l.weights.length);
  const layers = model.layers.filter((l) => l.params.length);
  expect(layers).toHaveLength(convs.length);
  for (let i = 0; i < layers.length; i++) {
    const w = await layers[i].getWeights();
    w.forEach((x, j) => expect(sameBits(x.data, convs[i].weights[j].data), `${layers[i].name} ${j}`).toBe(true));
  }
}

describe('downloadFile', () => {
  it('right hash: the file appears, complete, with progress up to its size', async () => {
    const d = await fresh('right');
    const seen: { loaded: number; total: number | null }[] = [];
    await downloadFile(`${base}/vgg16.h5`, join(d, 'w.h5'), { md5: vggMd5, onProgress: (p) => seen.push(p) });
    expect(await readdir(d)).toEqual(['w.h5']);
    expect(await md5File(join(d, 'w.h5'))).toBe(vggMd5);
    const size = (await readFile(vggFile)).length;
    expect(seen[0]).toMatchObject({ loaded: 0, total: size, label: 'w.h5' });
    expect(seen[seen.length - 1]).toMatchObject({ loaded: size, total: size });
  });

  it('wrong hash: fails and leaves nothing', async () => {
    const d = await fresh('wrong');
    await expect(downloadFile(`${base}/vgg16.h5`, join(d, 'w.h5'), { md5: '0'.repeat(32) })).rejects.toThrow(/has MD5 [0-9a-f]{32}, expected 0{32}/);
    expect(await readdir(d)).toEqual([]);
  });

  it('connection cut halfway: fails and leaves nothing', async () => {
    const d = await fresh('cut');
    await expect(downloadFile(`${base}/cut.h5`, join(d, 'w.h5'), { md5: vggMd5 })).rejects.toThrow(/downloading .*cut.h5 failed/);
    expect(await readdir(d)).toEqual([]);
  });

  it('HTTP errors and refused connections say what happened', async () => {
    const d = await fresh('errors');
    await expect(downloadFile(`${base}/missing.h5`, join(d, 'w.h5'))).rejects.toThrow(/HTTP 404/);
    await expect(downloadFile(closedUrl, join(d, 'w.h5'))).rejects.toThrow(/ECONNREFUSED/);
    expect(await readdir(d)).toEqual([]);
  });

  it('removes partial files left by a process that was killed, not those of live ones', async () => {
    const d = await fresh('stale');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await writeFile(join(d, `w.h5.${dead}.0badf00d.partial`), 'left over');
    await writeFile(join(d, `w.h5.${process.pid}.0badf00d.partial`), 'in progress elsewhere');
    await downloadFile(`${base}/vgg16.h5`, join(d, 'w.h5'), { md5: vggMd5 });
    expect((await readdir(d)).sort()).toEqual([`w.h5.${process.pid}.0badf00d.partial`, 'w.h5'].sort());
  });
});

describe("weights: 'imagenet'", () => {
  it('downloads, verifies, converts and caches; later calls use the cache without the network', async () => {
    const cache = join(dir, 'cache');
    const seen: number[] = [];
    const t0 = performance.now();
    const layers = await imagenetVgg16Weights({ cacheDir: cache, downloadUrl: `${base}/vgg16.h5`, md5: vggMd5, onProgress: (p) => seen.push(p.loaded) });
    console.log(`imagenet: download (local) + MD5 + convert + cache of a full-size notop file: ${(performance.now() - t0).toFixed(0)} ms`);
    expect(seen[seen.length - 1]).toBe((await readFile(vggFile)).length);
    expect(layers.filter((l) => l.weights.length)).toHaveLength(13);
    expect((await readdir(cache)).sort()).toEqual([VGG16_NOTOP.fileName, VGG16_NOTOP.converted].sort());
    expect((await readdir(join(cache, VGG16_NOTOP.converted))).sort()).toEqual(['manifest.json', 'weights.bin']);
    const manifest = JSON.parse(await readFile(join(cache, VGG16_NOTOP.converted, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ model: 'vgg16', source: { file: VGG16_NOTOP.fileName, layout: 'legacy', md5: vggMd5 } });

    // From the cache: the download URL is a closed port, and nothing is requested.
    const before = requests;
    const model = await VGG16({ weights: 'imagenet', inputShape: [32, 32, 3], cacheDir: cache, downloadUrl: closedUrl });
    await expectVgg(model);
    expect(requests).toBe(before);

    // A damaged cache entry is rebuilt from the cached .h5 (no download either).
    await truncate(join(cache, VGG16_NOTOP.converted, 'weights.bin'), 1000);
    const again = await imagenetVgg16Weights({ cacheDir: cache, downloadUrl: closedUrl, md5: vggMd5 });
    expect(again.filter((l) => l.weights.length)).toHaveLength(13);
    await expectVgg(await VGG16({ weights: 'imagenet', inputShape: [32, 32, 3], cacheDir: cache, downloadUrl: closedUrl }));
    expect(requests).toBe(before);
  });

  it('uses a file put in the cache by hand, after checking its MD5', async () => {
    const cache = await fresh('by-hand');
    await copyFile(vggFile, join(cache, VGG16_NOTOP.fileName));
    // Keras's real MD5 is expected by default: this file is not Keras's, so it is refused.
    await expect(VGG16({ weights: 'imagenet', inputShape: [32, 32, 3], cacheDir: cache, downloadUrl: closedUrl })).rejects.toThrow(
      new RegExp(`${VGG16_NOTOP.fileName} has MD5 ${vggMd5}, expected ${VGG16_NOTOP.md5}: it is damaged or not Keras's file`),
    );
    const layers = await imagenetVgg16Weights({ cacheDir: cache, downloadUrl: closedUrl, md5: vggMd5 });
    expect(layers.filter((l) => l.weights.length)).toHaveLength(13);
  });

  it('with no network: explains how to supply the file by hand, and leaves no partial file', async () => {
    const cache = join(dir, 'offline-cache');
    process.env.WEBGPU_FINETUNE_CACHE = cache;
    process.env.WEBGPU_FINETUNE_WEIGHTS_URL = closedUrl;
    try {
      const err = await VGG16({ weights: 'imagenet', inputShape: [32, 32, 3] }).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/Could not get the VGG16 ImageNet weights: downloading http:\/\/127.0.0.1:\d+\/vgg16.h5 failed: .*ECONNREFUSED/);
      expect(err?.message).toContain(VGG16_NOTOP.url);
      expect(err?.message).toContain(`copy it to ${join(cache, VGG16_NOTOP.fileName)}`);
      expect(err?.message).toContain('WEBGPU_FINETUNE_CACHE');
      expect(err?.message).toMatch(/VGG16\(\{ weights: '\/path\/to\/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5' \}\) \(command line: --weights/);
      expect(await readdir(cache)).toEqual([]);

      // An interrupted download fails the same way, also leaving nothing.
      process.env.WEBGPU_FINETUNE_WEIGHTS_URL = `${base}/cut.h5`;
      await expect(VGG16({ weights: 'imagenet', inputShape: [32, 32, 3], onProgress: false })).rejects.toThrow(/Could not get the VGG16 ImageNet weights[\s\S]*To supply the file by hand/);
      expect(await readdir(cache)).toEqual([]);
    } finally {
      delete process.env.WEBGPU_FINETUNE_CACHE;
      delete process.env.WEBGPU_FINETUNE_WEIGHTS_URL;
    }
  });
});
