import type { Layer } from './layer.ts';

/** A tensor in the layer graph: a shape with the batch dimension left open (null). */
export class SymbolicTensor {
  private static nextId = 0;
  readonly id = SymbolicTensor.nextId++;
  /** Shape without the batch dimension, e.g. [240, 360, 3]. */
  readonly shape: number[];
  /** The layer that produced it, and the tensors that layer was applied to (none for inputs). */
  readonly sourceLayer: Layer;
  readonly inputs: readonly SymbolicTensor[];

  constructor(shape: number[], sourceLayer: Layer, inputs: readonly SymbolicTensor[]) {
    this.shape = shape;
    this.sourceLayer = sourceLayer;
    this.inputs = inputs;
  }

  /** The first input of the producing layer (null for an Input): the chain view of the graph. */
  get inbound(): SymbolicTensor | null {
    return this.inputs[0] ?? null;
  }

  /** Keras's notation, e.g. (None, 240, 360, 3). */
  get kerasShape(): string {
    return `(None, ${this.shape.join(', ')})`;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}
