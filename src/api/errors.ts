import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { InvalidArgumentError, NotFoundError } from '../store/errors.ts';
import { AuthFailure } from '../security/authFailure.ts';

/** An API error with its HTTP status; `parameter` names the request parameter at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

/** Binance's error codes for the cases the /api/v3 endpoints report. */
export const BINANCE = {
  unknown: -1000,
  tooManyRequests: -1003,
  unauthorized: -1002,
  illegalChars: -1100,
  mandatoryMissing: -1102,
  badParameter: -1130,
  badInterval: -1120,
  badSymbol: -1121,
} as const;

interface Normalised {
  status: number;
  code: string;
  message: string;
  parameter?: string;
}

/** Turns anything thrown by a handler into status, code, message and the parameter at fault. */
export function normalise(error: unknown): Normalised {
  if (error instanceof ApiError) return { status: error.status, code: error.code, message: error.message, parameter: error.parameter };
  if (error instanceof AuthFailure) return { status: error.status, code: error.code, message: error.message };
  if (error instanceof InvalidArgumentError) return { status: 400, code: 'invalid_parameter', message: error.message, parameter: error.parameter };
  if (error instanceof NotFoundError) return { status: 404, code: `unknown_${error.what}`, message: error.message, parameter: error.what === 'market' ? 'symbol' : undefined };
  const e = error as FastifyError;
  if (hasZodFastifySchemaValidationErrors(e)) {
    const issue = e.validation[0]!;
    const path = issue.instancePath.replace(/^\//, '').split('/')[0] || String((issue.params as { issue?: { path?: unknown[] } })?.issue?.path?.[0] ?? '');
    const missing = /received undefined|Required/i.test(issue.message ?? '');
    return {
      status: 400,
      code: missing ? 'missing_parameter' : 'invalid_parameter',
      message: `${path || e.validationContext || 'request'}: ${missing ? 'is required' : issue.message}`,
      parameter: path || undefined,
    };
  }
  if (e.statusCode === 429) return { status: 429, code: 'rate_limited', message: e.message };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { status: e.statusCode, code: e.code ?? 'bad_request', message: e.message };
  return { status: 500, code: 'internal', message: 'internal error' };
}

/** Native error body: {"error": {"code", "message", "parameter"}}. */
export function sendNative(reply: FastifyReply, n: Normalised) {
  return reply.code(n.status).send({ error: { code: n.code, message: n.message, ...(n.parameter ? { parameter: n.parameter } : {}) } });
}

/** Binance's {"code": -1121, "msg": "Invalid symbol."} body. */
export function sendBinance(reply: FastifyReply, n: Normalised) {
  let code: number = BINANCE.unknown;
  let msg = n.message;
  if (n.status === 429) code = BINANCE.tooManyRequests;
  else if (n.status === 401 || n.status === 403) code = BINANCE.unauthorized;
  else if (n.code === 'missing_parameter') [code, msg] = [BINANCE.mandatoryMissing, `Mandatory parameter '${n.parameter}' was not sent, was empty/null, or malformed.`];
  else if (n.code === 'unknown_market' || n.parameter === 'symbol' || n.parameter === 'symbols') [code, msg] = [BINANCE.badSymbol, 'Invalid symbol.'];
  else if (n.parameter === 'interval') [code, msg] = [BINANCE.badInterval, 'Invalid interval.'];
  else if (n.status === 400) [code, msg] = [BINANCE.badParameter, `Invalid data sent for a parameter '${n.parameter ?? 'unknown'}': ${n.message}`];
  // Binance answers an unknown symbol or order with 400 and its code; an unknown endpoint with 404.
  const status = n.status >= 500 ? 500 : n.status === 404 && n.code !== 'not_found' ? 400 : n.status;
  return reply.code(status).send({ code, msg });
}

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  const n = normalise(error);
  // A parameter that fails validation because it was not sent at all is reported as missing
  // (a path parameter is always sent: one that fails is invalid).
  const query = (request.query ?? {}) as Record<string, unknown>;
  const params = (request.params ?? {}) as Record<string, unknown>;
  const sent = n.parameter !== undefined && (params[n.parameter] !== undefined || (query[n.parameter] !== undefined && query[n.parameter] !== ''));
  if (n.code === 'invalid_parameter' && n.parameter && hasZodFastifySchemaValidationErrors(error) && !sent) {
    n.code = 'missing_parameter';
    n.message = `${n.parameter}: is required`;
  }
  if (n.status >= 500) request.log.error(error);
  if (error instanceof AuthFailure && error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
  return request.url.startsWith('/api/v3/') ? sendBinance(reply, n) : sendNative(reply, n);
}

export const nativeError = z
  .object({ error: z.object({ code: z.string().describe('A stable code, e.g. invalid_parameter'), message: z.string(), parameter: z.string().optional().describe('The request parameter at fault') }) })
  .describe('An error');
const binanceError = z.object({ code: z.number().int().describe("Binance's error code, e.g. -1121"), msg: z.string() }).describe("An error, in Binance's format");

/**
 * The error answers every operation documents: a bad parameter (400), a key that is not valid or
 * lacks the scope (401, 403), something unknown (404), a rate limit (429, with Retry-After), and
 * an internal error (500). Under /api/v3 in Binance's format, with its codes (an unknown symbol
 * is 400 -1121 there, as at Binance).
 */
export function errorResponses(url: string): Record<number, z.ZodType> {
  if (url.startsWith('/api/v3/')) return { 400: binanceError, 401: binanceError, 429: binanceError, 500: binanceError };
  return { 400: nativeError, 401: nativeError, 403: nativeError, 404: nativeError, 429: nativeError, 500: nativeError };
}
