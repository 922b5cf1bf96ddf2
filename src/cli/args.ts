// Flag parsing for the commands: node:util parseArgs, with messages that say what to do.
import { isAbsolute, relative } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in how the tool was called: exit code 2, one line, with what to do instead. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `args` for `command`; unknown flags, missing values and stray arguments become
 * UsageErrors that point at `webgpu-finetune <command> --help`.
 */
export function parse<O extends Options>(command: string, args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args: joinNegativeValues(args, options), options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    let msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') msg = msg.replace(/^Unknown option/, 'unknown option');
    throw new UsageError(`${command}: ${msg.replace(/\.$/, '')}; see 'webgpu-finetune ${command} --help'`);
  }
}

/**
 * parseArgs takes `--lr -1` for two flags (and refuses it as ambiguous); a value that reads as a
 * negative number is joined to its string option (`--lr=-1`) so the option's own check judges it.
 */
function joinNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = /^--([^=]+)$/.exec(args[i])?.[1];
    if (name && options[name]?.type === 'string' && i + 1 < args.length && /^-(\d|\.\d)/.test(args[i + 1])) {
      out.push(`${args[i]}=${args[++i]}`);
    } else out.push(args[i]);
  }
  return out;
}

// Decimal only: Number() would also take '0x10' (16), '0b1', ' 12 ' and '' (0).
const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function int(v: string | undefined, name: string, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = INTEGER.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number >= ${min}, got '${v}'`);
  return n;
}

/** A decimal number in [0, max] (e.g. 0.01, 1e-3); `max` as Keras bounds it (momentum: 1). */
export function num(v: string | undefined, name: string, fallback: number, max = Infinity): number {
  if (v === undefined) return fallback;
  const n = DECIMAL.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0 || n > max) throw new UsageError(`--${name} must be a number ${max === Infinity ? '>= 0' : `from 0 to ${max}`}, got '${v}'`);
  return n;
}

/** '240x360' -> [240, 360] (height x width, as Keras's target_size). */
export function size(v: string | undefined, fallback: [number, number], min = 32): [number, number] {
  if (v === undefined) return fallback;
  const m = /^(\d+)x(\d+)$/.exec(v.trim());
  const hw = m ? [Number(m[1]), Number(m[2])] : [];
  if (!m || hw.some((d) => d < min || d > 8192)) {
    throw new UsageError(`--size must be HEIGHTxWIDTH in pixels, each from ${min} (VGG16 pools five times) to 8192, e.g. 240x360; got '${v}'`);
  }
  return hw as [number, number];
}

export function oneOf<T extends string>(v: string | undefined, name: string, choices: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`--${name} must be ${choices.join(' or ')}, got '${v}'`);
  return v as T;
}

export function required(v: string | undefined, name: string, command: string, what: string): string {
  if (v === undefined || v === '') throw new UsageError(`${command}: --${name} ${what} is required; see 'webgpu-finetune ${command} --help'`);
  return v;
}

/** A path for messages: relative to the working folder when inside it, else absolute. */
export function display(path: string): string {
  const rel = relative(process.cwd(), path);
  if (rel === '') return '.';
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
