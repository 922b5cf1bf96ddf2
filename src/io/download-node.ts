// Downloads to a file with progress and an MD5 check; a file appears under its final name only
// when complete and verified (it is written to a `.partial` file beside it, then renamed).

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { atomicIo, isDiskFull, syncAndCheck, writeAll, type OpenFile } from './atomic-file-node.ts';
import type { ProgressCallback } from './weights-manifest.ts';

export class DownloadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DownloadError';
  }
}

export interface DownloadOptions {
  /** Expected MD5 (32 hex digits): a mismatch fails the download and leaves nothing behind. */
  md5?: string;
  onProgress?: ProgressCallback;
  /** Give up when no bytes arrive for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Opens the partial file for writing (tests inject a disk that fills up); default atomicIo.openFile. */
  openFile?: OpenFile;
}

export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const PARTIAL = /^(.*)\.(\d+)\.[0-9a-f]{8}\.partial$/;

/**
 * Removes `.partial` files left for `dest` by processes that are gone (killed mid-download:
 * nothing else could clean up after them). Partials of live processes are left alone.
 */
export async function removeStalePartials(dest: string): Promise<void> {
  const names = await readdir(dirname(dest)).catch(() => [] as string[]);
  for (const name of names) {
    const m = PARTIAL.exec(name);
    if (!m || m[1] !== basename(dest)) continue;
    let alive = true;
    try {
      process.kill(Number(m[2]), 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await rm(join(dirname(dest), name), { force: true });
  }
}

/** Fetches `url` into `dest`. Throws DownloadError (with the cause) on any failure. */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<void> {
  const label = basename(dest);
  const tmp = `${dest}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
  const idle = options.idleTimeoutMs ?? 60_000;
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${Math.round(idle / 1000)} s`)), idle);
  };
  await removeStalePartials(dest);
  try {
    arm();
    const res = await fetch(url, { signal: controller.signal, redirect: 'follow' });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    // With a content encoding, Content-Length counts compressed bytes: no completeness check then.
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    const length = Number(res.headers.get('content-length'));
    const total = !encoded && Number.isSafeInteger(length) && length > 0 ? length : null;
    const hash = createHash('md5');
    const fh = await (options.openFile ?? atomicIo.openFile)(tmp);
    let loaded = 0;
    try {
      const reader = res.body.getReader();
      options.onProgress?.({ label, loaded, total });
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        hash.update(value);
        // every byte, short writes retried: a full disk must not leave a short file that passes
        await writeAll(fh, value);
        loaded += value.length;
        options.onProgress?.({ label, loaded, total });
      }
      await syncAndCheck(fh, loaded, tmp);
    } finally {
      await fh.close();
    }
    if (total !== null && loaded !== total) throw new Error(`the connection closed after ${loaded} of ${total} bytes`);
    const md5 = hash.digest('hex');
    if (options.md5 && md5 !== options.md5.toLowerCase()) throw new Error(`the downloaded file (${loaded} bytes) has MD5 ${md5}, expected ${options.md5}: it is damaged or not the expected file`);
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    if (isDiskFull(e)) {
      const kept = await stat(dest).then(() => `the previous ${label} is kept`, () => 'nothing was kept');
      throw new DownloadError(`downloading ${url} failed: disk full while writing ${dest}: ${kept}; free some space and run again`, { cause: e });
    }
    const reason = controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : e;
    throw new DownloadError(`downloading ${url} failed: ${describeFetchError(reason)}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** fetch() says only "fetch failed" or "terminated"; the useful part is in the cause. */
function describeFetchError(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 4; c = c.cause) {
    const code = (c as NodeJS.ErrnoException).code;
    parts.push(code && !c.message.includes(code) ? `${c.message} (${code})` : c.message);
  }
  return parts.length ? parts.join(': ') : String(e);
}

const MB = 1024 * 1024;

/** A text progress bar on stderr: redrawn in place on a terminal, a few plain lines otherwise. */
export function textProgress(stream: NodeJS.WriteStream = process.stderr): ProgressCallback {
  let lastDraw = 0;
  let lastStep = -1;
  let ended = false;
  return ({ label, loaded, total }) => {
    if (ended) return;
    const done = total !== null && loaded >= total;
    const size = total === null ? `${(loaded / MB).toFixed(1)} MB` : `${(loaded / MB).toFixed(1)}/${(total / MB).toFixed(1)} MB`;
    if (stream.isTTY) {
      const now = Date.now();
      if (!done && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 30;
      const filled = total ? Math.min(width, Math.floor((loaded / total) * width)) : 0;
      const bar = total ? `[${'='.repeat(filled)}${filled < width ? '>' : ''}${'.'.repeat(Math.max(0, width - filled - 1))}] ${Math.floor((loaded / total) * 100)}% ` : '';
      stream.write(`\r${label} ${bar}${size}`);
      if (done) stream.write('\n');
    } else {
      // Not a terminal (a log file, CI): one line per quarter, so logs stay short.
      const step = total ? Math.floor((loaded / total) * 4) : 0;
      if (step === lastStep && !done) return;
      lastStep = step;
      stream.write(`${label}: ${total ? `${step * 25}% ` : ''}${size}\n`);
    }
    if (done) ended = true;
  };
}
