import { Activation, Conv2D, Dense, Dropout, Flatten, InputLayer, MaxPooling2D, type ActivationName, type Layer } from './layers.ts';

/**
 * The model as the plan sees it: a chain of units, each one kernel family (an Activation layer
 * is folded into the Conv2D/Dense before it). Shapes exclude the batch dimension.
 */
export type Unit =
  | { kind: 'conv2d'; layer: Conv2D; activation: ActivationName; inShape: number[]; outShape: number[] }
  | { kind: 'maxpool'; layer: MaxPooling2D; inShape: number[]; outShape: number[] }
  | { kind: 'dense'; layer: Dense; activation: ActivationName; inShape: number[]; outShape: number[] }
  | { kind: 'dropout'; layer: Dropout; inShape: number[]; outShape: number[] }
  | { kind: 'flatten'; layer: Flatten; inShape: number[]; outShape: number[] };

export const unitSize = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Builds the unit chain from Keras-ordered layers (index 0 the input layer). */
export function toUnits(layers: Layer[]): Unit[] {
  const units: Unit[] = [];
  for (const layer of layers) {
    if (layer instanceof InputLayer) continue;
    const inShape = layer.input!.shape;
    const outShape = layer.output!.shape;
    if (layer instanceof Conv2D) units.push({ kind: 'conv2d', layer, activation: layer.activation, inShape, outShape });
    else if (layer instanceof MaxPooling2D) units.push({ kind: 'maxpool', layer, inShape, outShape });
    else if (layer instanceof Dense) units.push({ kind: 'dense', layer, activation: layer.activation, inShape, outShape });
    else if (layer instanceof Dropout) units.push({ kind: 'dropout', layer, inShape, outShape });
    else if (layer instanceof Flatten) units.push({ kind: 'flatten', layer, inShape, outShape });
    else if (layer instanceof Activation) {
      const prev = units[units.length - 1];
      if (!prev || (prev.kind !== 'conv2d' && prev.kind !== 'dense') || prev.activation !== 'linear') {
        throw new Error(`${layer.name} (Activation): must directly follow a Conv2D or Dense layer with no activation of its own (it is fused into that layer's kernel)`);
      }
      if (prev.kind === 'conv2d' && layer.activation !== 'relu') throw new Error(`${layer.name}: ${layer.activation} after a Conv2D is not supported (only relu)`);
      prev.activation = layer.activation;
      prev.outShape = outShape;
    } else {
      throw new Error(`${layer.name}: layer type ${layer.className} is not supported by the execution plan`);
    }
  }
  return units;
}
