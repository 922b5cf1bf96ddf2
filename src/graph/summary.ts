import type { Layer } from './layers.ts';

const LINE = 65;
const POSITIONS = [29, 55, 65]; // Keras's layout for sequential-like models: [.45, .85, 1] x 65

// Keras's print_row: each field is cut or padded to its column's end, and the last character
// before the next field is forced to a space so long names stay separated.
function row(fields: string[]): string {
  let line = '';
  fields.forEach((f, i) => {
    if (i > 0) line = `${line.slice(0, -1)} `;
    line = (line + f).slice(0, POSITIONS[i]);
    line += ' '.repeat(POSITIONS[i] - line.length);
  });
  return line;
}

const commas = (n: number) => n.toLocaleString('en-US');

/** Keras's model.summary() table, with total, trainable and non-trainable parameter counts. */
export function summaryLines(layers: Layer[], trainable: (l: Layer) => boolean): string[] {
  const out = ['_'.repeat(LINE), row(['Layer (type)', 'Output Shape', 'Param #']), '='.repeat(LINE)];
  let total = 0;
  let train = 0;
  layers.forEach((l, i) => {
    const n = l.countParams();
    total += n;
    if (trainable(l)) train += n;
    out.push(row([`${l.name} (${l.className})`, `(None, ${l.output!.shape.join(', ')})`, String(n)]));
    out.push(i === layers.length - 1 ? '='.repeat(LINE) : '_'.repeat(LINE));
  });
  out.push(`Total params: ${commas(total)}`, `Trainable params: ${commas(train)}`, `Non-trainable params: ${commas(total - train)}`, '_'.repeat(LINE));
  return out;
}
