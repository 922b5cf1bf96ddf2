// Issue 15 item 5: class folders that are symlinks count as classes, files inside them are found,
// and symlink loops end (counted once) instead of recursing.
import { mkdirSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DirectoryIterator } from '../src/io/flow.ts';
import { listClassFolders } from '../src/io/directory-node.ts';
import { ImageDataGenerator } from '../src/io/image-data-generator.ts';
import { pngRgb, tempDir, writeTree } from './io-images.ts';

const solid = (level: number) => pngRgb(4, 5, new Uint8Array(60).fill(level));

function sinks() {
  const out = { log: [] as string[], warn: [] as string[] };
  return { out, opts: { log: (l: string) => out.log.push(l), warn: (l: string) => out.warn.push(l) } };
}

const flows: DirectoryIterator[] = [];
let base: string;
beforeAll(() => {
  base = tempDir('reliability-symlinks-');
});
afterAll(async () => {
  for (const f of flows) await f.close();
  await rm(base, { recursive: true, force: true });
});

async function flow(dir: string, opts: Record<string, unknown>) {
  const f = await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [4, 5], classMode: 'binary', shuffle: false, workers: 0, ...opts });
  flows.push(f);
  return f;
}

describe('symlinked class folders', () => {
  it('one real and one linked class folder: binary mode finds 2 classes and every image, linked subfolders too', async () => {
    const data = join(base, 'data');
    const elsewhere = join(base, 'elsewhere-dogs');
    writeTree(data, { 'cats/c1.png': solid(10), 'cats/c2.png': solid(20), 'notes.txt': 'outside' });
    writeTree(elsewhere, { 'd1.png': solid(30), 'deep/d2.png': solid(40) });
    writeTree(join(base, 'extra'), { 'c3.png': solid(50) });
    symlinkSync(elsewhere, join(data, 'dogs'), 'dir');
    symlinkSync(join(base, 'extra'), join(data, 'cats', 'more'), 'dir');
    symlinkSync(join(base, 'missing'), join(data, 'broken'));

    const listed = await listClassFolders(data);
    expect(listed.classDirs.sort()).toEqual(['cats', 'dogs']);
    expect(listed.outside.sort()).toEqual(['broken', 'notes.txt']);

    const s = sinks();
    const f = await flow(data, { followLinks: true, ...s.opts });
    expect(f.classIndices).toEqual({ cats: 0, dogs: 1 });
    expect(f.filenames).toEqual(['cats/c1.png', 'cats/c2.png', 'cats/more/c3.png', 'dogs/d1.png', 'dogs/deep/d2.png']);
    expect(s.out.log).toContain('Found 5 images belonging to 2 classes.');

    // Keras's default (follow_links=False): the linked class folder is still entered; a linked subfolder is not, with a word.
    const d = sinks();
    const g = await flow(data, d.opts);
    expect(g.filenames).toEqual(['cats/c1.png', 'cats/c2.png', 'dogs/d1.png', 'dogs/deep/d2.png']);
    expect(d.out.warn.join('\n')).toMatch(/did not enter 1 linked folder inside class folders \('cats\/more'\); pass followLinks: true/);
  });

  for (const followLinks of [true, false]) {
    it(`symlink cycles end and count nothing twice (followLinks: ${followLinks})`, async () => {
      const data = join(base, `loops-${followLinks}`);
      writeTree(data, { 'a/a1.png': solid(10), 'a/sub/a2.png': solid(20), 'b/b1.png': solid(30) });
      symlinkSync(join(data, 'a'), join(data, 'a', 'self'), 'dir'); // link to its own folder
      symlinkSync(join(data, 'a'), join(data, 'a', 'sub', 'up'), 'dir'); // link to its parent
      symlinkSync(data, join(data, 'b', 'root'), 'dir'); // link to the data folder
      mkdirSync(join(data, 'b', 'inner'));
      symlinkSync('..', join(data, 'b', 'inner', 'back'), 'dir'); // relative link up

      const s = sinks();
      const f = await flow(data, { followLinks, ...s.opts });
      expect(f.classIndices).toEqual({ a: 0, b: 1 });
      expect(f.filenames).toEqual(['a/a1.png', 'a/sub/a2.png', 'b/b1.png']);
      expect(s.out.log).toContain('Found 3 images belonging to 2 classes.');
      expect(s.out.warn.join('\n')).toMatch(/skipped 4 linked folders that loop back to a folder above/);
    }, 20_000);
  }
});
