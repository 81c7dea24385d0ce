import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiKeyIdentity, ApiKeyRepository, Scope } from '../store/apiKeys.ts';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's identity, when the request carried a valid one. */
    identity: ApiKeyIdentity | null;
  }
}

/** X-API-Key, or Binance's X-MBX-APIKEY, or Authorization: Bearer. */
function presentedKey(request: FastifyRequest): string | null {
  const h = request.headers;
  const bearer = typeof h.authorization === 'string' && /^Bearer (.+)$/i.exec(h.authorization)?.[1];
  const key = h['x-api-key'] ?? h['x-mbx-apikey'] ?? bearer;
  return typeof key === 'string' && key !== '' ? key : null;
}

/** Resolves the caller's key on every request (before rate limiting, which counts per user). */
export function registerAuth(app: FastifyInstance, keys: ApiKeyRepository): void {
  app.decorateRequest('identity', null);
  app.addHook('onRequest', async (request) => {
    const key = presentedKey(request);
    if (key === null) return;
    const identity = await keys.verify(key);
    if (!identity) throw new ApiError(401, 'invalid_api_key', 'the API key is not valid (unknown, revoked or expired)');
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
