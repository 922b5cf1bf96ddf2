// Small pure parts of the CLI: durations in the summary, the SVG curves, flag parsing.
import { describe, expect, it } from 'vitest';
import { int, num, parse, size, UsageError } from '../src/cli/args.ts';
import { historySvg } from '../src/cli/plot.ts';
import { fmtDuration } from '../src/cli/progress.ts';

describe('CLI formatting and parsing', () => {
  it('formats durations without 60s in a minute', () => {
    expect(fmtDuration(12.34)).toBe('12.3 s');
    expect(fmtDuration(59.97)).toBe('1m 00s');
    expect(fmtDuration(119.6)).toBe('2m 00s');
    expect(fmtDuration(125)).toBe('2m 05s');
    expect(fmtDuration(3 * 3600 + 5 * 60)).toBe('3h 05m');
  });

  it('draws one polyline per series, points at the values, and survives one epoch or a NaN', () => {
    const h = { epoch: [0, 1, 2], history: { loss: [0.9, 0.5, 0.3], acc: [0.5, 0.75, 1], val_loss: [1, 0.6, Number.NaN], val_acc: [0.5, 0.5, 0.8] }, seconds: [1, 1, 1] };
    const svg = historySvg(h, 'a <run> & more');
    expect(svg.match(/<polyline /g)).toHaveLength(4);
    expect(svg).toContain('a &lt;run&gt; &amp; more');
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    // accuracy panel spans [0, 1]: acc 1 sits on the panel's top edge (y0 = 60)
    expect(svg).toMatch(/cx="[\d.]+" cy="60.0" r="3" fill="#1f77b4"/);
    const one = historySvg({ epoch: [0], history: { loss: [0.7], acc: [0.5], val_loss: [0.69], val_acc: [0.5] }, seconds: [1] });
    expect(one.match(/<circle /g)).toHaveLength(4);
  });

  it('parses sizes and numbers, and turns mistakes into usage errors naming the flag', () => {
    expect(size('240x360', [1, 1])).toEqual([240, 360]);
    expect(size(undefined, [32, 48])).toEqual([32, 48]);
    expect(() => size('31x64', [1, 1])).toThrow(UsageError);
    expect(() => size('64', [1, 1])).toThrow(/HEIGHTxWIDTH/);
    expect(int('3', 'epochs', 1)).toBe(3);
    expect(() => int('0', 'epochs', 1)).toThrow(/--epochs must be a whole number >= 1/);
    expect(() => int('2.5', 'batch', 1)).toThrow(/--batch/);
    expect(num('0.9', 'momentum', 0)).toBe(0.9);
    expect(() => num('-1', 'lr', 0)).toThrow(/--lr must be a number >= 0/);
    expect(() => num('', 'lr', 0)).toThrow(/--lr/);
    expect(() => parse('train', ['--nope'], {})).toThrow(/train: unknown option '--nope'.*train --help/);
    expect(() => parse('train', ['--epochs'], { epochs: { type: 'string' } })).toThrow(/--epochs.*argument missing|argument missing/);
  });
});
