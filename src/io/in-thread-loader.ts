/**
 * An ImageLoader that decodes and augments on the calling thread, one image at a time, yielding
 * to the event loop between images so GPU callbacks and the training loop keep running. Used by
 * browsers (bytes from File objects or fetch) and by Node with `workers: 0`.
 */
import type { TransformParams } from './augment.ts';
import type { ImageLoader } from './flow.ts';
import type { PngReader } from './image-decode.ts';
import { processImage, type ImageSpec } from './pipeline.ts';

const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class InThreadLoader implements ImageLoader {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly read: (index: number) => Promise<Uint8Array>,
    private readonly spec: ImageSpec,
    private readonly readPng: PngReader,
  ) {}

  load(index: number, params: TransformParams | null): Promise<Float32Array> {
    const bytes = this.read(index); // reads may overlap; decoding is serialised
    bytes.catch(() => undefined);
    const job = this.tail.then(async () => {
      if (this.closed) throw new Error('the image loader was closed');
      await yieldToEventLoop();
      return processImage(await bytes, this.spec, params, this.readPng);
    });
    this.tail = job.catch(() => undefined);
    return job;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
