import { parseArgs } from 'node:util';

export interface BenchArgs {
  json?: string;
  repeats: number;
  warmup: number;
  /** Row-name filters (any may match); empty: every row. */
  only: string[];
  tfjs: boolean;
  /** Force wall-clock timing even where GPU timestamps exist. */
  wall: boolean;
  list: boolean;
  help: boolean;
}

export const USAGE = `npm run bench:kernels -- [options]

  --repeats N      timed runs per engine and row, median reported (default 5)
  --warmup N       untimed runs per engine first (default 1)
  --only TEXT      only rows whose name contains TEXT (comma-separated: any of them)
  --no-tfjs        skip TensorFlow.js (ours only)
  --wall           time by wall clock even if the adapter has GPU timestamps
  --json FILE      also write the results as a JSON array, one object per row
  --list           print the row names and exit
  --help           this text`;

function positiveInt(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'string' },
      repeats: { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string', multiple: true },
      'no-tfjs': { type: 'boolean' },
      wall: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  return {
    json: values.json,
    repeats: positiveInt('repeats', values.repeats, 5, 1),
    warmup: positiveInt('warmup', values.warmup, 1, 0),
    only: (values.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
    tfjs: !values['no-tfjs'],
    wall: Boolean(values.wall),
    list: Boolean(values.list),
    help: Boolean(values.help),
  };
}
