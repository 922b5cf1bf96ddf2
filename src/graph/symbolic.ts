import type { Layer } from './layers.ts';

/** A tensor in the layer graph: a shape with the batch dimension left open (null). */
export class SymbolicTensor {
  private static nextId = 0;
  readonly id = SymbolicTensor.nextId++;
  /** Shape without the batch dimension, e.g. [240, 360, 3]. */
  readonly shape: number[];
  /** The layer that produced it, and the tensor that layer was applied to (null for inputs). */
  readonly sourceLayer: Layer;
  readonly inbound: SymbolicTensor | null;

  constructor(shape: number[], sourceLayer: Layer, inbound: SymbolicTensor | null) {
    this.shape = shape;
    this.sourceLayer = sourceLayer;
    this.inbound = inbound;
  }

  /** Keras's notation, e.g. (None, 240, 360, 3). */
  get kerasShape(): string {
    return `(None, ${this.shape.join(', ')})`;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}
