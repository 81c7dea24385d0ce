import { actAs, inetOf } from '../security/audit.ts';
import { createHash } from 'node:crypto';
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
 * The address a client is counted under: an IPv4 address as it is, an IPv6 address by its /64
 * (one host holds a whole /64 and could rotate through it).
 */
export function clientAddress(ip: string): string {
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Keys verified lately (by SHA-256): they are not counted against their address again for a while. */
const GOOD_KEYS_TTL_MS = 60_000;

/**
 * Resolves the caller's key on every request, before the per-user rate limit (which counts per
 * user). A key not verified lately is counted against its client address before it is looked up
 * (so concurrent tries are counted too): past `failureLimit` in a window, the address is refused
 * with 429 before any lookup, whatever the key and whatever the path. A key that verifies is
 * remembered for a minute, so a client using its valid key is not counted on every request.
 */
export function registerAuth(app: FastifyInstance, keys: ApiKeyRepository, options: AuthOptions): void {
  app.decorateRequest('identity', null);
  const attempts = app.createRateLimit({
    keyGenerator: (request) => `auth-attempts:${clientAddress(request.ip)}`,
    max: options.failureLimit,
    timeWindow: options.windowMs,
    // No path is exempt (the global limiter lets /health and /docs through).
    allowList: () => false,
  });
  /** Until when each recently verified key (by digest) is not counted. */
  const good = new Map<string, number>();
  app.addHook('onRequest', async (request) => {
    const key = presentedKey(request);
    if (key === null) return;
    const digest = createHash('sha256').update(key).digest('hex');
    if ((good.get(digest) ?? 0) < Date.now()) {
      const counted = await attempts(request);
      if (!counted.isAllowed && counted.isExceeded) {
        throw new ApiError(429, 'too_many_invalid_keys', `too many invalid API keys from this address: at most ${options.failureLimit} per ${Math.round(options.windowMs / 1000)} s; retry after ${Math.max(1, counted.ttlInSeconds)} s`);
      }
    }
    // Verified each time (a revoked key stops working at once); only the counting is skipped.
    const identity = await keys.verify(key);
    if (!identity) {
      good.delete(digest);
      throw new ApiError(401, 'invalid_api_key', 'the API key is not valid (unknown, revoked or expired)');
    }
    if (good.size > 10_000) good.delete(good.keys().next().value!);
    good.set(digest, Date.now() + GOOD_KEYS_TTL_MS);
    request.identity = identity;
  });
}

/** The caller's identity, which must carry `scope`. */
export function requireScope(request: FastifyRequest, scope: Scope): ApiKeyIdentity {
  const identity = request.identity;
  if (!identity) throw new ApiError(401, 'api_key_required', 'this endpoint needs an API key (header X-API-Key)');
  if (!identity.scopes.includes(scope)) throw new ApiError(403, 'scope_required', `this endpoint needs an API key with the ${scope} scope`);
  // What the handler changes from here on is this key's doing (the audit trail).
  const agent = request.headers['user-agent'];
  actAs({ who: `key:${identity.keyId}`, ip: inetOf(request.ip), userAgent: typeof agent === 'string' ? agent : null });
  return identity;
}
