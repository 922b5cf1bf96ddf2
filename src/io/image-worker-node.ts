/**
 * Worker-thread body for Node flows: reads an image file, decodes, resizes, augments and
 * rescales it (pipeline.ts), and posts the float32 pixels back (transferred, not copied).
 */
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import type { TransformParams } from './augment.ts';
import { processImage, type ImageSpec } from './pipeline.ts';
import { readPngNode } from './png-node.ts';

export interface WorkerJob {
  id: number;
  index: number;
  params: TransformParams | null;
}
export type WorkerReply = { id: number; x: Float32Array } | { id: number; error: string };

const { spec, paths } = workerData as { spec: ImageSpec; paths: string[] };
const port = parentPort!;

port.on('message', async (job: WorkerJob) => {
  let reply: WorkerReply;
  try {
    const b = await readFile(paths[job.index]);
    const x = processImage(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), spec, job.params, readPngNode);
    port.postMessage({ id: job.id, x } satisfies WorkerReply, [x.buffer as ArrayBuffer]);
    return;
  } catch (e) {
    reply = { id: job.id, error: (e as Error).message };
  }
  port.postMessage(reply);
});
