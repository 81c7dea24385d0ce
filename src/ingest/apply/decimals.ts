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

export const add = (a: string, b: string) => new Big(a).plus(b).toFixed();
export const mul = (a: string, b: string) => new Big(a).times(b).toFixed();
export const cmp = (a: string, b: string) => new Big(a).cmp(b);
