// Issue 15 (4): every section of a checkpoint is covered by its checksum, optimizer state included.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open, readdir } from 'node:fs/promises';
import { emptyHistory, readCheckpoint, saveCheckpoint, writeFileAtomic, type TrainState, type WritableHandle } from '../src/cli/checkpoint.ts';
import { Dense, Flatten, Input, Model, SGD } from '../src/index.ts';
import { randomArray } from './helpers/random.ts';

describe('checkpoint checksum', () => {
  it('refuses a checkpoint with a changed velocity or state, and still reads version 1 files', async () => {
    const input = Input({ shape: [4, 4, 3] });
    const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(new Flatten().apply(input)) });
    m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy' });
    await m.trainOnBatch(randomArray(2 * 48, 1), new Float32Array([0, 1]));
    const state: TrainState = { epoch: 1, step: 0, partial: { loss: [], acc: [], size: [], seconds: 0 }, history: emptyHistory(), trainPosition: 3, valPosition: 1 };
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
    try {
      const path = join(dir, 'checkpoint.ckpt');
      await saveCheckpoint(path, m, state);
      const good = await readCheckpoint(path);
      expect(good.velocities.map((v) => v.name)).toEqual(['dense/kernel', 'dense/bias']);
      const bytes = new Uint8Array(await readFile(path));
      // the last velocity value sits just before the 32-byte digest: make it 1e30
      const poisoned = bytes.slice();
      new DataView(poisoned.buffer).setFloat32(poisoned.length - 32 - 4, 1e30, true);
      await writeFile(path, poisoned);
      await expect(readCheckpoint(path)).rejects.toThrow(/is not a usable checkpoint: its checksum does not match/);
      // a digit of the header's state
      const text = new TextDecoder().decode(bytes);
      const at = text.indexOf('"trainPosition":3');
      const edited = bytes.slice();
      edited[at + '"trainPosition":'.length] = '4'.charCodeAt(0);
      await writeFile(path, edited);
      await expect(readCheckpoint(path)).rejects.toThrow(/checksum does not match/);
      // version 1: the same sections without the digest
      const v1 = bytes.slice(0, bytes.length - 32);
      new DataView(v1.buffer).setUint32(8, 1, true);
      await writeFile(path, v1);
      const old = await readCheckpoint(path);
      expect(old.velocities[1].data).toEqual(good.velocities[1].data);
      expect(old.state.trainPosition).toBe(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a disk that fills up mid-write keeps the previous file, removes the temporary one and says the disk is full', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-full-'));
    try {
      const path = join(dir, 'checkpoint.ckpt');
      await writeFileAtomic(path, 'the good checkpoint');
      // a disk with room for 1000 more bytes: short writes, then ENOSPC
      let room = 1000;
      const full = async (p: string): Promise<WritableHandle> => {
        const fh = await open(p, 'w');
        return {
          async write(buffer, offset, length) {
            if (room === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
            const n = Math.min(length, room, 300);
            room -= n;
            return fh.write(buffer, offset, n);
          },
          sync: () => fh.sync(),
          stat: () => fh.stat(),
          close: () => fh.close(),
        };
      };
      await expect(writeFileAtomic(path, [new Uint8Array(800), new Uint8Array(800)], full)).rejects.toThrow(/disk full while writing .*checkpoint\.ckpt \(1,600 bytes\): the previous checkpoint\.ckpt is kept/);
      expect(await readFile(path, 'utf8')).toBe('the good checkpoint');
      expect(await readdir(dir)).toEqual(['checkpoint.ckpt']);
      // short writes alone are retried to the end
      room = 5000;
      await writeFileAtomic(path, [new Uint8Array(800).fill(7), new Uint8Array(800).fill(9)], full);
      const written = new Uint8Array(await readFile(path));
      expect(written.length).toBe(1600);
      expect(written[799]).toBe(7);
      expect(written[800]).toBe(9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
