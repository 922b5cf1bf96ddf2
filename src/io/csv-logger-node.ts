// keras.callbacks.CSVLogger for Node: one row per epoch, written (and so flushed) as the epoch ends.
import { appendFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { Callback, pyRepr, type Logs } from '../graph/callbacks.ts';

export interface CSVLoggerConfig {
  /** One character between cells (Python's csv module allows no more). Default ','. */
  separator?: string;
  /** Add to an existing file (continuing a run): no second header. Default false: overwrite. */
  append?: boolean;
}

/**
 * Streams epoch results to a CSV file as Keras 3 does: a header 'epoch' + the first epoch's log
 * keys sorted (plus val_* twins when there is no validation, filled 'NA'), values as Python prints
 * floats, CRLF line ends (Python's csv dialect).
 */
export class CSVLogger extends Callback {
  readonly separator: string;
  readonly append: boolean;
  private keys: string[] | null = null;
  private writeHeader = true;
  private open = false;

  constructor(readonly filename: string, config: CSVLoggerConfig = {}) {
    super();
    if (typeof filename !== 'string' || !filename) throw new Error(`CSVLogger: filename must be a path such as 'run/log.csv', got ${String(filename)}`);
    this.separator = config.separator ?? ',';
    if (this.separator.length !== 1 || /["\r\n]/.test(this.separator)) {
      throw new Error(`CSVLogger: separator must be one character other than a quote or a line break, got ${JSON.stringify(this.separator)}`);
    }
    this.append = config.append ?? false;
  }

  override onTrainBegin(): void {
    try {
      if (this.append) {
        // the header goes only into an empty or new file
        this.writeHeader = !existsSync(this.filename) || statSync(this.filename).size === 0;
        appendFileSync(this.filename, '');
      } else {
        this.writeHeader = true;
        writeFileSync(this.filename, '');
      }
    } catch (e) {
      throw new Error(`CSVLogger: cannot open '${this.filename}' for writing (${(e as Error).message}); check that its folder exists and is writable`);
    }
    this.open = true;
    this.keys = null;
  }

  private cell(text: string): string {
    // Python's QUOTE_MINIMAL: quote a cell holding the separator, a quote or a line break
    return text.includes(this.separator) || /["\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  override onEpochEnd(epoch: number, logs: Logs): void {
    if (!this.open) throw new Error('CSVLogger: onEpochEnd before onTrainBegin; pass the logger in fit({ callbacks: [...] })');
    logs = logs ?? {};
    let text = '';
    if (this.keys === null) {
      const keys = Object.keys(logs).sort();
      // without validation Keras still writes the val_ columns, as 'NA'
      if (keys.length && !keys.some((k) => k.startsWith('val_'))) keys.push(...keys.map((k) => `val_${k}`));
      this.keys = keys;
      if (this.writeHeader) text += `${['epoch', ...keys].map((k) => this.cell(k)).join(this.separator)}\r\n`;
    }
    const row = [String(epoch), ...this.keys.map((k) => (typeof logs[k] === 'number' ? pyRepr(logs[k]) : 'NA'))];
    text += `${row.map((c) => this.cell(c)).join(this.separator)}\r\n`;
    appendFileSync(this.filename, text);
  }

  override onTrainEnd(): void {
    this.open = false;
  }
}
