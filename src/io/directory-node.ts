/**
 * flowFromDirectory for Node: lists class folders and their files (recursively, like os.walk),
 * then hands over to prepareFlow with worker threads (or the main thread for workers: 0).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AugmentSettings } from './augment.ts';
import { prepareFlow, type Listing, type ResolvedFlowOptions, type SourceFile } from './dataset.ts';
import type { DirectoryIterator } from './flow.ts';
import { InThreadLoader } from './in-thread-loader.ts';
import { readPngNode } from './png-node.ts';
import { WorkerPoolLoader } from './worker-pool-node.ts';

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** os.walk of one class folder: every file below it, with its folder relative to the class. */
async function walk(classRoot: string, cls: string, dir: string, followLinks: boolean, out: SourceFile<string>[]): Promise<void> {
  const here = join(classRoot, dir);
  for (const e of await readdir(here, { withFileTypes: true })) {
    const path = join(here, e.name);
    const sub = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(classRoot, cls, sub, followLinks, out);
    else if (e.isSymbolicLink()) {
      // os.walk lists links to files as files, and enters linked folders only with followlinks
      const s = await stat(path).catch(() => null);
      if (s?.isDirectory()) {
        if (followLinks) await walk(classRoot, cls, sub, followLinks, out);
      } else out.push({ cls, dir, name: e.name, source: path });
    } else if (e.isFile()) out.push({ cls, dir, name: e.name, source: path });
  }
}

export async function flowFromDirectoryNode(directory: string, options: ResolvedFlowOptions, augment: AugmentSettings, what: string): Promise<DirectoryIterator> {
  const root = resolve(directory);
  let st;
  try {
    st = await stat(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${what}: directory '${directory}' does not exist (resolved to ${root})` : `${what}: cannot open '${directory}': ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new Error(`${what}: '${directory}' is a file, not a directory of class folders`);

  const entries = await readdir(root, { withFileTypes: true });
  const classDirs: string[] = [];
  const outside: string[] = [];
  for (const e of entries) {
    if (await isDir(join(root, e.name))) classDirs.push(e.name);
    else outside.push(e.name);
  }
  const files: SourceFile<string>[] = [];
  for (const cls of classDirs) await walk(join(root, cls), cls, '', options.followLinks, files);
  const listing: Listing<string> = { root: `'${directory}'`, classDirs, files, outside };

  return prepareFlow({
    what,
    listing,
    options,
    augment,
    read: async (path) => {
      const b = await readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    makeLoader: (paths, spec) => {
      if (options.workers === 0) {
        return new InThreadLoader(async (i) => new Uint8Array(await readFile(paths[i])), spec, readPngNode);
      }
      return new WorkerPoolLoader(paths, spec, options.workers ?? undefined);
    },
  });
}
