// The functional model's topology: which layers, in Keras's order, and who reads each tensor.
import { InputLayer, type Layer } from './layer.ts';
import type { SymbolicTensor } from './symbolic.ts';

/**
 * model.layers in Keras's order (Keras 2's _map_graph_network, which TF.js copies): a depth-first
 * walk from the output numbers layers in visiting order; each node's depth is one more than the
 * deepest node reading it (the output has depth 0); layers are listed by decreasing depth, ties in
 * visiting order. The input layer comes first.
 */
export function kerasLayerOrder(input: SymbolicTensor, output: SymbolicTensor): Layer[] {
  const visitIndex = new Map<Layer, number>();
  const finished = new Set<Layer>();
  const inProgress = new Set<Layer>();
  const decreasingDepth: Layer[] = []; // post-order: a layer after everything it reads
  // iterative DFS (deep backbones would overflow a recursive one in some browsers)
  const stack: { layer: Layer; next: number }[] = [];
  const enter = (l: Layer) => {
    if (finished.has(l)) return;
    if (inProgress.has(l)) throw new Error(`Model: the graph has a cycle through ${l.name}`);
    if (!visitIndex.has(l)) visitIndex.set(l, visitIndex.size);
    inProgress.add(l);
    stack.push({ layer: l, next: 0 });
  };
  enter(output.sourceLayer);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const ins = top.layer.inputs;
    if (top.next < ins.length) {
      enter(ins[top.next++].sourceLayer);
      continue;
    }
    stack.pop();
    inProgress.delete(top.layer);
    finished.add(top.layer);
    decreasingDepth.push(top.layer);
  }
  if (!finished.has(input.sourceLayer)) {
    const roots = decreasingDepth.filter((l) => l.inputs.length === 0).map((l) => l.name);
    throw new Error(`Model: the outputs do not come from the given inputs (they come from ${roots.join(', ')} instead of ${input.sourceLayer.name})`);
  }
  const depth = new Map<Layer, number>();
  for (let i = decreasingDepth.length - 1; i >= 0; i--) {
    const l = decreasingDepth[i];
    const d = depth.get(l) ?? 0;
    depth.set(l, d);
    for (const t of l.inputs) depth.set(t.sourceLayer, Math.max(d + 1, depth.get(t.sourceLayer) ?? 0));
  }
  const layers = [...depth.keys()].sort((a, b) => depth.get(b)! - depth.get(a)! || visitIndex.get(a)! - visitIndex.get(b)!);
  for (const l of layers) {
    if (l.inputs.length === 0 && !(l instanceof InputLayer)) throw new Error(`Model: ${l.name} has no inputs`);
    if (l instanceof InputLayer && l !== input.sourceLayer) throw new Error(`Model: the outputs depend on a second input (${l.name}); models with several inputs are not supported`);
  }
  return layers;
}

/** For each tensor, the layers that read it (in model order). */
export function readersOf(layers: readonly Layer[]): Map<SymbolicTensor, Layer[]> {
  const readers = new Map<SymbolicTensor, Layer[]>();
  for (const l of layers) {
    for (const t of l.inputs) {
      const list = readers.get(t) ?? [];
      if (!list.includes(l)) list.push(l);
      readers.set(t, list);
    }
  }
  return readers;
}
