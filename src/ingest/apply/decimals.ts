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
