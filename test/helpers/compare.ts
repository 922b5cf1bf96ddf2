import { expect } from 'vitest';

/**
 * Asserts |a - b| <= tol * max(1, |b|) elementwise (relative, with an absolute floor near
 * zero), reporting the worst element. NaN anywhere fails (catches unwritten, poisoned output).
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'values'): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const b = expected[i];
    const err = Math.abs(a - b) / Math.max(1, Math.abs(b));
    if (!(err <= tol)) {
      if (Number.isNaN(err) || err > worstErr || worst < 0) {
        worst = i;
        worstErr = Number.isNaN(err) ? Infinity : err;
      }
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (error ${worstErr.toExponential(2)} > ${tol})`);
  }
}

/**
 * |a - b| <= rel * |b| + abs elementwise: a truly relative check for values far below 1 (tiny
 * gradients, near-zero losses), where expectClose's floor of 1 would accept anything.
 */
export function expectRelative(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, abs: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= rel * Math.abs(expected[i]) + abs)) expect.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}
