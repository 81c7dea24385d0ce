import Big from 'big.js';

/**
 * Whether a canonical decimal fits DECIMAL(precision, scale) without rounding. Seed 000's
 * columns are DECIMAL(20,8); PostgreSQL would silently round a ninth decimal, so such values
 * are refused instead.
 */
export function fitsDecimal(value: string, precision = 20, scale = 8): boolean {
  const [whole = '', fraction = ''] = value.replace(/^[-+]/, '').split('.');
  return fraction.length <= scale && whole.replace(/^0+/, '').length <= precision - scale;
}

export function describeFit(field: string, value: string, precision = 20, scale = 8): string | null {
  return fitsDecimal(value, precision, scale)
    ? null
    : `${field} ${value} does not fit DECIMAL(${precision},${scale}) (at most ${precision - scale} digits before and ${scale} after the point) and would be rounded`;
}

const PLAIN = /^([+-]?)(\d+)(?:\.(\d*))?$/;

/**
 * A decimal's canonical text, as big.js's toFixed() writes it ("007.50" → "7.5", "1e-8" →
 * "0.00000001", "-0" → "0"), without big.js for the common plain form (it runs for every value
 * of every message).
 */
export function canonicalDecimal(text: string): string {
  const m = PLAIN.exec(text);
  if (!m) return new Big(text.startsWith('+') ? text.slice(1) : text).toFixed();
  const whole = m[2]!.replace(/^0+(?=\d)/, '');
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  const zero = whole === '0' && fraction === '';
  return `${m[1] === '-' && !zero ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** A canonical decimal with exactly `scale` places, as PostgreSQL prints NUMERIC(p, scale). */
export function withScale(canonical: string, scale = 8): string {
  const dot = canonical.indexOf('.');
  const fraction = dot < 0 ? '' : canonical.slice(dot + 1);
  return `${dot < 0 ? canonical : canonical.slice(0, dot)}.${fraction.padEnd(scale, '0')}`;
}

export const add = (a: string, b: string) => new Big(a).plus(b).toFixed();
export const mul = (a: string, b: string) => new Big(a).times(b).toFixed();
export const cmp = (a: string, b: string) => new Big(a).cmp(b);

/** A decimal as a scaled integer: `units / 10^scale`. Exact, and much faster than big.js in bulk. */
export type Fixed = readonly [units: bigint, scale: number];

const FIXED = /^([+-]?)(\d+)(?:\.(\d*))?$/;
const POWERS = Array.from({ length: 80 }, (_, i) => 10n ** BigInt(i));
const pow10 = (n: number) => POWERS[n] ?? 10n ** BigInt(n);

export function toFixedPoint(text: string): Fixed {
  const m = FIXED.exec(text);
  if (!m) return toFixedPoint(new Big(text).toFixed());
  const fraction = m[3] ?? '';
  const units = BigInt(m[2]! + fraction);
  return [m[1] === '-' ? -units : units, fraction.length];
}

/** The canonical text of a fixed-point value (big.js's toFixed(): no trailing zeros, no "-0"). */
export function fixedPointText([units, scale]: Fixed): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  const text = fraction ? `${whole}.${fraction}` : whole;
  return negative && text !== '0' ? `-${text}` : text;
}

const rescale = ([units, scale]: Fixed, to: number): bigint => units * pow10(to - scale);
export const fixedSub = (a: Fixed, b: Fixed): Fixed => {
  const scale = Math.max(a[1], b[1]);
  return [rescale(a, scale) - rescale(b, scale), scale];
};
export const fixedMul = (a: Fixed, b: Fixed): Fixed => [a[0] * b[0], a[1] + b[1]];
