import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiKeyIdentity, ApiKeyRepository, Scope } from '../store/apiKeys.ts';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's identity, when the request carried a valid one. */
    identity: ApiKeyIdentity | null;
  }
}

/**
 * X-API-Key, or Binance's X-MBX-APIKEY, or Authorization: Bearer with an API key (ts_…); other
 * bearer tokens (the metrics token) are not API keys.
 */
function presentedKey(request: FastifyRequest): string | null {
  const h = request.headers;
  const bearer = typeof h.authorization === 'string' && /^Bearer (ts_.+)$/i.exec(h.authorization)?.[1];
  const key = h['x-api-key'] ?? h['x-mbx-apikey'] ?? bearer;
  return typeof key === 'string' && key !== '' ? key : null;
}

export interface AuthOptions {
  /** Invalid keys presented from one client address per window before it is refused (429) without a lookup. */
  failureLimit: number;
  windowMs: number;
}

/**
 * Resolves the caller's key on every request, before the per-user rate limit (which counts per
 * user). Invalid keys are counted per client address in the rate limiter's store: past
 * `failureLimit` in a window, a key from that address is refused with 429 before it costs a
 * database lookup, whatever the key.
 */
export function registerAuth(app: FastifyInstance, keys: ApiKeyRepository, options: AuthOptions): void {
  app.decorateRequest('identity', null);
  const failures = app.createRateLimit({
    keyGenerator: (request) => `auth-failures:${request.ip}`,
    max: options.failureLimit,
    timeWindow: options.windowMs,
  });
  app.addHook('onRequest', async (request) => {
    const key = presentedKey(request);
    if (key === null) return;
    const seen = await failures(request, { increment: false });
    if (!seen.isAllowed && seen.remaining === 0) {
      throw new ApiError(429, 'too_many_invalid_keys', `too many invalid API keys from this address: at most ${options.failureLimit} per ${Math.round(options.windowMs / 1000)} s; retry after ${Math.max(1, seen.ttlInSeconds)} s`);
    }
    const identity = await keys.verify(key);
    if (!identity) {
      await failures(request);
      throw new ApiError(401, 'invalid_api_key', 'the API key is not valid (unknown, revoked or expired)');
    }
    request.identity = identity;
  });
}

/** The caller's identity, which must carry `scope`. */
export function requireScope(request: FastifyRequest, scope: Scope): ApiKeyIdentity {
  const identity = request.identity;
  if (!identity) throw new ApiError(401, 'api_key_required', 'this endpoint needs an API key (header X-API-Key)');
  if (!identity.scopes.includes(scope)) throw new ApiError(403, 'scope_required', `this endpoint needs an API key with the ${scope} scope`);
  return identity;
}
