// The reference program's model for benchmarks: VGG16 base (random weights), blocks 1-4 frozen,
// Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid, binary cross-entropy.
import { Dense, Dropout, Flatten, Input, Model, VGG16, type Optimizer } from '../../src/index.ts';

export const FROZEN = 15;

export async function referenceModel(h: number, w: number, optimizer: string | Optimizer = 'sgd'): Promise<Model> {
  const base = await VGG16({ weights: null, includeTop: false, inputTensor: Input({ shape: [h, w, 3] }) });
  for (const l of base.layers.slice(0, FROZEN)) l.trainable = false;
  let x = new Flatten().apply(base.output);
  x = new Dense({ units: 256, activation: 'relu' }).apply(x);
  x = new Dropout({ rate: 0.5 }).apply(x);
  const model = new Model({ inputs: base.input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
  model.compile({ optimizer, loss: 'binary_crossentropy', metrics: ['acc'] });
  return model;
}
