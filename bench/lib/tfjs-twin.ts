// The same functional model in TF.js layers (for the training-step rival): each of our layers
// mapped to its tf.layers twin, weights copied, trainable flags kept.
import type { Model } from '../../src/index.ts';
import type { Act } from '../../src/graph/activations.ts';
import type { Tf } from './tfjs.ts';

type TfLayers = Tf['layers'];
type Sym = ReturnType<Tf['input']>;

function activation(a: Act): { activation?: string; cap?: number } {
  if (a.kind === 'linear') return {};
  if (a.kind === 'relu') return a.maxValue === 6 ? { cap: 6 } : { activation: 'relu' };
  return { activation: a.kind };
}

/** A tf.LayersModel with our model's graph and current weights (host copies: read them first). */
export async function tfjsTwin(tf: Tf, model: Model): Promise<ReturnType<Tf['model']>> {
  const L: TfLayers = tf.layers;
  const out = new Map<unknown, Sym>();
  for (const l of model.layers) {
    const ins = l.inputs.map((s) => out.get(s.sourceLayer)!);
    const any = l as unknown as Record<string, unknown>;
    const act = (x: Sym, a: Act) => {
      const { cap } = activation(a);
      return cap ? (L.reLU({ maxValue: cap }).apply(x) as Sym) : x;
    };
    let y: Sym;
    switch (l.className) {
      case 'InputLayer': y = tf.input({ shape: model.inputs.shape }); break;
      case 'Conv2D': y = act(L.conv2d({ filters: any.filters as number, kernelSize: any.kernelSize as [number, number], strides: any.strides as [number, number], padding: any.padding as 'same', useBias: any.useBias as boolean, activation: activation(any.activation as Act).activation as 'relu', name: l.name }).apply(ins[0]) as Sym, any.activation as Act); break;
      case 'DepthwiseConv2D': y = act(L.depthwiseConv2d({ kernelSize: any.kernelSize as [number, number], strides: any.strides as [number, number], padding: any.padding as 'same', useBias: any.useBias as boolean, depthMultiplier: any.depthMultiplier as number, activation: activation(any.activation as Act).activation as 'relu', name: l.name }).apply(ins[0]) as Sym, any.activation as Act); break;
      case 'BatchNormalization': y = L.batchNormalization({ momentum: any.momentum as number, epsilon: any.epsilon as number, name: l.name }).apply(ins[0]) as Sym; break;
      case 'ReLU': y = L.reLU({ maxValue: (any.activation as { maxValue?: number }).maxValue }).apply(ins[0]) as Sym; break;
      case 'Activation': y = L.activation({ activation: activation(any.activation as Act).activation as 'relu' }).apply(ins[0]) as Sym; break;
      case 'Add': y = L.add().apply(ins) as Sym; break;
      case 'ZeroPadding2D': y = L.zeroPadding2d({ padding: any.padding as [[number, number], [number, number]] }).apply(ins[0]) as Sym; break;
      case 'MaxPooling2D': y = L.maxPooling2d({ poolSize: any.poolSize as [number, number], strides: any.strides as [number, number], padding: any.padding as 'valid' }).apply(ins[0]) as Sym; break;
      case 'GlobalAveragePooling2D': y = L.globalAveragePooling2d({}).apply(ins[0]) as Sym; break;
      case 'Flatten': y = L.flatten().apply(ins[0]) as Sym; break;
      case 'Dropout': y = L.dropout({ rate: any.rate as number }).apply(ins[0]) as Sym; break;
      case 'Dense': y = L.dense({ units: any.units as number, activation: activation(any.activation as Act).activation as 'relu', name: l.name }).apply(ins[0]) as Sym; break;
      default: throw new Error(`tfjsTwin: no TF.js twin for ${l.className} (${l.name})`);
    }
    out.set(l, y);
  }
  const twin = tf.model({ inputs: out.get(model.layers[0])!, outputs: out.get(model.layers[model.layers.length - 1])! });
  for (const l of model.layers) {
    if (!l.params.length) continue;
    const t = twin.getLayer(l.name);
    t.setWeights(l.params.map((p) => tf.tensor(p.host, p.shape)));
    t.trainable = l.trainable;
  }
  return twin;
}
