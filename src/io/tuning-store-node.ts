// The kernel tuner's measurements in Node: one JSON file in the weights cache folder, written
// whole through a temporary file (a crash mid-write leaves the previous file).
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TuningStore } from '../kernels/autotune.ts';
import { writeFileAtomic } from './atomic-file-node.ts';
import { defaultCacheDir } from './weights-node.ts';

export const TUNING_FILE = 'kernel-tuning.json';

/** A store in `path` (default: kernel-tuning.json in $WEBGPU_FINETUNE_CACHE or ~/.cache/webgpu-finetune). */
export function fileTuningStore(path = join(defaultCacheDir(), TUNING_FILE)): TuningStore {
  return {
    where: path,
    read: async () => {
      try {
        return await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
    write: async (text) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, text);
    },
  };
}
