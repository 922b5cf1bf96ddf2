/**
 * Node's ImageLoader: a few worker threads that read, decode and augment images while the main
 * thread drives the GPU. Each worker holds up to two jobs so file reads overlap decoding.
 * Workers keep the process alive only while jobs are pending (they are unref'd when idle),
 * so a script that forgets close() still exits.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { TransformParams } from './augment.ts';
import type { ImageLoader } from './flow.ts';
import type { WorkerJob, WorkerReply } from './image-worker-node.ts';
import type { ImageSpec } from './pipeline.ts';

const PER_WORKER = 2;

/**
 * Worker threads to use by default: the cores left after the main thread, at most 8 (a 240x360
 * JPEG takes jpeg-js 10-40 ms to decode, so a fast GPU needs several decoding in parallel).
 */
export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

/**
 * Starts the worker script. Running from TypeScript sources (tsx, vitest), a worker needs a
 * TypeScript loader of its own: a tiny bootstrap registers tsx in the worker, then imports it.
 */
function startWorker(workerData: unknown): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const script = new URL(fromSource ? './image-worker-node.ts' : './image-worker-node.js', import.meta.url);
  if (!fromSource) return new Worker(script, { workerData });
  const tsx = tsxEsmApi();
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(script.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

/** file: URL of tsx's ESM API (its `import` export; require.resolve would give the CJS one). */
function tsxEsmApi(): string {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const entry = JSON.parse(readFileSync(pkg, 'utf8')).exports['./esm/api'].import;
  return pathToFileURL(join(dirname(pkg), typeof entry === 'string' ? entry : entry.default)).href;
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Job {
  msg: WorkerJob;
  resolve(x: Float32Array): void;
  reject(e: Error): void;
}

export class WorkerPoolLoader implements ImageLoader {
  private readonly slots: Slot[] = [];
  private readonly waiting: Job[] = [];
  private readonly running = new Map<number, Job & { slot: Slot }>();
  private nextId = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(paths: string[], spec: ImageSpec, workers = defaultWorkerCount()) {
    for (let i = 0; i < Math.max(1, workers); i++) {
      const slot: Slot = { worker: startWorker({ paths, spec }), busy: 0 };
      slot.worker.unref();
      slot.worker.on('message', (r: WorkerReply) => this.finish(r));
      slot.worker.on('error', (e) => this.fail(new Error(`image worker thread failed: ${e.message}`)));
      slot.worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`image worker thread exited (code ${code})`));
      });
      this.slots.push(slot);
    }
  }

  load(index: number, params: TransformParams | null): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the image loader was closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ msg: { id: this.nextId++, index, params }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      while (slot.busy < PER_WORKER && this.waiting.length) {
        const job = this.waiting.shift()!;
        slot.busy++;
        this.running.set(job.msg.id, { ...job, slot });
        slot.worker.postMessage(job.msg);
      }
    }
    this.updateRefs();
  }

  private finish(r: WorkerReply): void {
    const job = this.running.get(r.id);
    if (!job) return;
    this.running.delete(r.id);
    job.slot.busy--;
    if ('error' in r) job.reject(new Error(r.error));
    else job.resolve(r.x);
    this.pump();
  }

  /** A worker died: every pending and later load fails with the reason. */
  private fail(e: Error): void {
    this.failure ??= e;
    for (const job of [...this.running.values(), ...this.waiting]) job.reject(this.failure);
    this.running.clear();
    this.waiting.length = 0;
    for (const s of this.slots) s.busy = 0;
    this.updateRefs();
  }

  /** Keeps the event loop alive exactly while some job is pending. */
  private updateRefs(): void {
    const active = this.running.size > 0;
    for (const s of this.slots) (active ? s.worker.ref() : s.worker.unref());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of [...this.running.values(), ...this.waiting]) job.reject(new Error('the image loader was closed'));
    this.running.clear();
    this.waiting.length = 0;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
