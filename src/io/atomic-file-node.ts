/**
 * Complete-or-nothing file writes (Node): each file goes to a temporary file beside its target,
 * every byte written (short writes retried), synced, its size checked, and only then renamed over
 * the target. On any failure the temporaries are removed and the targets keep their previous
 * contents; a full disk is said plainly. Checkpoints, history.json, weights/, model.h5 and the
 * weights cache all go through here.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** What the writers need of a file handle (tests inject a disk that fills up). */
export interface WritableHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export type OpenFile = (path: string) => Promise<WritableHandle>;

/**
 * How files are opened for writing when a caller passes no `openFile`. Tests replace `openFile`
 * to simulate a full disk on paths that do not take one (weights/, model.h5, the weights cache,
 * downloads); production code leaves it alone.
 */
export const atomicIo: { openFile: OpenFile } = { openFile: (p) => open(p, 'w') };

/** A hidden temporary name beside `path`, unique to this process and call. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export const isDiskFull = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
};

/** Writes all of `bytes` at the handle's position; a write that makes no progress counts as a full disk. */
export async function writeAll(fh: WritableHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    if (!(bytesWritten > 0)) throw Object.assign(new Error(`no bytes written at ${done} of ${bytes.length}`), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

/** After the last write: synced to the disk and exactly `total` bytes long, or an error. */
export async function syncAndCheck(fh: WritableHandle, total: number, what: string): Promise<void> {
  await fh.sync();
  const { size } = await fh.stat();
  if (size !== total) throw new Error(`${what} holds ${size} bytes after writing ${total}`);
}

type Data = string | Uint8Array | Uint8Array[];

const toParts = (data: Data): Uint8Array[] => (Array.isArray(data) ? data : [data]).map((p) => (typeof p === 'string' ? new TextEncoder().encode(p) : p));

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Writes several files as one step: every file is first written completely to its own temporary
 * file and checked; only when all are, they are renamed into place in the given order (so list
 * a data file before the manifest that points at it). A failure before the renames (a full disk,
 * a short write) leaves every target as it was and no temporary file behind.
 */
export async function writeFilesAtomic(files: { path: string; data: Data }[], openFile: OpenFile = atomicIo.openFile): Promise<void> {
  const staged: { tmp: string; path: string }[] = [];
  let current = files[0]?.path ?? '';
  let total = 0;
  try {
    for (const { path, data } of files) {
      current = path;
      const parts = toParts(data);
      total = parts.reduce((a, p) => a + p.length, 0);
      const tmp = tempPathFor(path);
      staged.push({ tmp, path });
      const fh = await openFile(tmp);
      try {
        for (const part of parts) await writeAll(fh, part);
        await syncAndCheck(fh, total, tmp);
      } finally {
        await fh.close();
      }
    }
    for (const s of staged) {
      current = s.path;
      await rename(s.tmp, s.path);
    }
  } catch (e) {
    await Promise.all(staged.map((s) => rm(s.tmp, { force: true })));
    if (isDiskFull(e)) {
      const names = files.map((f) => basename(f.path));
      const kept = (await Promise.all(files.map((f) => exists(f.path)))).some(Boolean);
      const what = names.length === 1 ? names[0] : names.join(' and ');
      const outcome = kept ? `the previous ${what} ${names.length === 1 ? 'is' : 'are'} kept` : `nothing was written`;
      throw Object.assign(new Error(`disk full while writing ${current} (${total.toLocaleString('en-US')} bytes): ${outcome}; free some space and run again`, { cause: e }), { code: (e as NodeJS.ErrnoException).code });
    }
    throw e;
  }
}

/**
 * Writes `data` to `path` through a temporary file beside it: every byte written (short writes
 * retried), synced, its size checked, and only then renamed over `path`. On any failure the
 * temporary file is removed and `path` keeps its previous contents; a full disk says so.
 */
export async function writeFileAtomic(path: string, data: Data, openFile: OpenFile = atomicIo.openFile): Promise<void> {
  await writeFilesAtomic([{ path, data }], openFile);
}
