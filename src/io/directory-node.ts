/**
 * flowFromDirectory for Node: lists class folders and their files (recursively, like os.walk),
 * then hands over to prepareFlow with worker threads (or the main thread for workers: 0).
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AugmentSettings } from './augment.ts';
import { prepareFlow, type Listing, type ResolvedFlowOptions, type SourceFile } from './dataset.ts';
import type { DirectoryIterator } from './flow.ts';
import { InThreadLoader } from './in-thread-loader.ts';
import { readPngNode } from './png-node.ts';
import { WorkerPoolLoader } from './worker-pool-node.ts';

/**
 * Class folders of `root`, followed through symlinks (as Keras's os.path.isdir does): a linked
 * folder is a class, a link to a file or a broken link is not. Every listing of class folders
 * (the flow, the command line's checks) should use this, so they agree.
 */
export async function listClassFolders(root: string): Promise<{ classDirs: string[]; outside: string[] }> {
  const classDirs: string[] = [];
  const outside: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true })) {
    const dir = e.isDirectory() || (e.isSymbolicLink() && (await stat(join(root, e.name)).catch(() => null))?.isDirectory());
    (dir ? classDirs : outside).push(e.name);
  }
  return { classDirs, outside };
}

interface WalkState {
  cls: string;
  followLinks: boolean;
  out: SourceFile<string>[];
  /** real paths of the folders on the way down: a linked folder among them is a loop */
  above: Set<string>;
  /** real paths of every folder walked in this class: a folder reached twice is listed once */
  seen: Set<string>;
  notFollowed: string[];
  loops: string[];
}

/** os.walk of one class folder: every file below it, with its folder relative to the class. */
async function walk(here: string, dir: string, st: WalkState): Promise<void> {
  const real = await realpath(here);
  if (st.seen.has(real)) {
    if (st.above.has(real)) st.loops.push(`${st.cls}/${dir}`);
    return;
  }
  st.seen.add(real);
  st.above.add(real);
  for (const e of await readdir(here, { withFileTypes: true })) {
    const path = join(here, e.name);
    const sub = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(path, sub, st);
    else if (e.isSymbolicLink()) {
      // os.walk lists links to files as files, and enters linked folders only with followlinks
      const s = await stat(path).catch(() => null);
      if (s?.isDirectory()) {
        if (st.followLinks) await walk(path, sub, st);
        else if (st.above.has(await realpath(path))) st.loops.push(`${st.cls}/${sub}`);
        else st.notFollowed.push(`${st.cls}/${sub}`);
      } else out(st, dir, e.name, path);
    } else if (e.isFile()) out(st, dir, e.name, path);
  }
  st.above.delete(real);
}

const out = (st: WalkState, dir: string, name: string, source: string) => st.out.push({ cls: st.cls, dir, name, source });

const few = (xs: string[]) => xs.slice(0, 3).map((x) => `'${x}'`).join(', ') + (xs.length > 3 ? `, ... (${xs.length - 3} more)` : '');

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

  const { classDirs, outside } = await listClassFolders(root);
  const files: SourceFile<string>[] = [];
  const notFollowed: string[] = [];
  const loops: string[] = [];
  // The data folder counts as above every class: a link back to it would list other classes' images.
  const realRoot = await realpath(root);
  for (const cls of classDirs) {
    const st = { cls, followLinks: options.followLinks, out: files, above: new Set([realRoot]), seen: new Set([realRoot]), notFollowed, loops };
    await walk(join(root, cls), '', st);
  }
  if (notFollowed.length) {
    options.warn(`${what}: did not enter ${notFollowed.length} linked folder${notFollowed.length > 1 ? 's' : ''} inside class folders (${few(notFollowed)}); pass followLinks: true to use the images in them`);
  }
  if (loops.length) {
    options.warn(`${what}: skipped ${loops.length} linked folder${loops.length > 1 ? 's' : ''} that loop back to a folder above (${few(loops)}); their images are counted once`);
  }
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
