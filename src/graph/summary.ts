import type { Layer } from './layer.ts';

const commas = (n: number) => n.toLocaleString('en-US');

// Keras's print_row: each field is cut or padded to its column's end, and the last character
// before the next field is forced to a space so long names stay separated.
function row(fields: string[], positions: number[]): string {
  let line = '';
  fields.forEach((f, i) => {
    if (i > 0) line = `${line.slice(0, -1)} `;
    line = (line + f).slice(0, positions[i]);
    line += ' '.repeat(positions[i] - line.length);
  });
  return line;
}

/**
 * Keras's model.summary() table, with total, trainable and non-trainable parameter counts. A
 * chain of layers prints Keras's sequential-like layout (65 columns); a graph where some layer
 * reads several tensors or a tensor feeds several layers gets the 'Connected to' column (98).
 */
export function summaryLines(layers: readonly Layer[]): string[] {
  const readers = new Map<Layer, number>();
  for (const l of layers) for (const t of l.inputs) readers.set(t.sourceLayer, (readers.get(t.sourceLayer) ?? 0) + 1);
  const graph = layers.some((l) => l.inputs.length > 1 || (readers.get(l) ?? 0) > 1);
  const line = graph ? 98 : 65;
  const positions = graph ? [33, 60, 70, 98] : [29, 55, 65];
  const header = graph ? ['Layer (type)', 'Output Shape', 'Param #', 'Connected to'] : ['Layer (type)', 'Output Shape', 'Param #'];
  const out = ['_'.repeat(line), row(header, positions), '='.repeat(line)];
  let total = 0;
  let train = 0;
  layers.forEach((l, i) => {
    const n = l.countParams();
    total += n;
    train += l.trainableParams.reduce((a, p) => a + p.size, 0);
    const fields = [`${l.name} (${l.className})`, `(None, ${l.output!.shape.join(', ')})`, String(n)];
    if (!graph) out.push(row(fields, positions));
    else {
      // Keras 2 lists each inbound as name[node][tensor]; one line per input
      const ins = l.inputs.map((t) => `${t.sourceLayer.name}[0][0]`);
      out.push(row([...fields, ins[0] ?? ''], positions));
      for (const extra of ins.slice(1)) out.push(row(['', '', '', extra], positions));
    }
    out.push(i === layers.length - 1 ? '='.repeat(line) : '_'.repeat(line));
  });
  out.push(`Total params: ${commas(total)}`, `Trainable params: ${commas(train)}`, `Non-trainable params: ${commas(total - train)}`, '_'.repeat(line));
  return out;
}
