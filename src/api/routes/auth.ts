import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { SCOPES } from '../../store/apiKeys.ts';
import { AuthFailure } from '../../security/authFailure.ts';
import type { Tokens } from '../../security/sessions.ts';
import { clientOf, requireScope, type Identity } from '../auth.ts';
import { nativeError } from '../errors.ts';

const tags = ['Sessions (password login) and two-factor authentication'];
const security = [{ apiKey: [] }];
const conflict = { 409: nativeError };

const tokens = z.object({
  sessionToken: z.string().describe('Send as Authorization: Bearer <sessionToken>; works wherever an API key does, with the session\'s scopes'),
  refreshToken: z.string().describe('POST to /v1/auth/refresh for a new pair before refreshExpiresAt; each one works once'),
  sessionId: z.string(), userId: z.string(), scopes: z.array(z.enum(SCOPES)), expiresAt: z.string(), refreshExpiresAt: z.string(),
});
const asTokens = (t: Tokens) => ({ ...t, expiresAt: t.expiresAt.toISOString(), refreshExpiresAt: t.refreshExpiresAt.toISOString() });
const code = z.string().regex(/^\d{6}$/, 'must be the 6 digits the authenticator shows');
const recoveryCode = z.string().min(1).max(40);
const password = z.string().min(1).max(1024);

/** A session's own identity; an API key is refused (these change how the user logs in). */
function requireSession(request: FastifyRequest): Identity & { sessionId: string; familyId: string } {
  const identity = requireScope(request);
  if (identity.sessionId === null || identity.familyId === null) {
    throw new AuthFailure(403, 'session_required', 'this endpoint needs a session token (log in with POST /v1/auth/login), not an API key');
  }
  return identity as Identity & { sessionId: string; familyId: string };
}


export function authRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/auth/login', {
    schema: {
      tags,
      summary: 'Password login: a session token and a refresh token. Failures are limited per account and client address (429 with Retry-After while locked) and never tell whether the user exists',
      body: z.object({
        email: z.string().min(1).max(255), password,
        code: code.optional().describe('The current TOTP code, for a user with two-factor authentication'),
        recoveryCode: recoveryCode.optional().describe('Instead of code: one of the recovery codes (each works once)'),
        scopes: z.array(z.enum(SCOPES)).min(1).optional().describe("Fewer than the user's scopes, for a narrower session (e.g. read only)"),
      }).strict(),
      response: { 200: tokens },
    },
  }, async (request) => asTokens(await store.sessions.login(request.body, clientOf(request))));

  r.post('/v1/auth/refresh', {
    schema: {
      tags,
      summary: 'A new session token and refresh token for a refresh token, which is used up; one presented again revokes every session of its login',
      body: z.object({ refreshToken: z.string().min(1).max(200) }).strict(),
      response: { 200: tokens },
    },
  }, async (request) => asTokens(await store.sessions.refresh(request.body.refreshToken, clientOf(request))));

  r.post('/v1/auth/logout', {
    schema: { tags, security, summary: 'Ends this session and every session refreshed from the same login', response: { 200: z.object({ revoked: z.number().int() }) } },
  }, async (request) => {
    const session = requireSession(request);
    return { revoked: await store.writesAs(session.userId).sessions.logout(session) };
  });

  r.post('/v1/auth/logout-all', {
    schema: { tags, security, summary: "Ends every session of the caller's user (log out everywhere); API keys stay as they are", response: { 200: z.object({ revoked: z.number().int() }) } },
  }, async (request) => {
    const { userId } = requireScope(request);
    return { revoked: await store.writesAs(userId).sessions.logoutAll(userId) };
  });

  r.get('/v1/auth/sessions', {
    schema: {
      tags, security, summary: "The caller's user's live sessions, newest first (never a token)",
      response: {
        200: z.object({
          sessions: z.array(z.object({
            id: z.string(), familyId: z.string(), scopes: z.array(z.enum(SCOPES)), createdAt: z.string(), expiresAt: z.string(), refreshExpiresAt: z.string().nullable(),
            lastAccessed: z.string(), ipAddress: z.string().nullable(), userAgent: z.string().nullable(),
          })),
        }),
      },
    },
  }, async (request) => {
    const { userId } = requireScope(request);
    const sessions = await store.readsAs({ userId, admin: false }).sessions.list(userId);
    return {
      sessions: sessions.map((s) => ({
        ...s, createdAt: s.createdAt.toISOString(), expiresAt: s.expiresAt.toISOString(), refreshExpiresAt: s.refreshExpiresAt?.toISOString() ?? null, lastAccessed: s.lastAccessed.toISOString(),
      })),
    };
  });

  r.post('/v1/auth/2fa/setup', {
    schema: {
      tags, security,
      summary: 'A new TOTP secret (base32 and otpauth:// URI) for an authenticator app; two-factor authentication is on once /v1/auth/2fa/enable gets a code made with it',
      body: z.object({ password }).strict(),
      response: { 200: z.object({ secret: z.string(), uri: z.string() }), ...conflict },
    },
  }, async (request) => {
    const { userId } = requireSession(request);
    await store.sessions.confirmPassword(userId, request.body.password, clientOf(request));
    return store.writesAs(userId).twoFactor.setup(userId);
  });

  r.post('/v1/auth/2fa/enable', {
    schema: {
      tags, security, summary: 'Turns two-factor authentication on with a current code; answers the ten recovery codes, shown this once',
      body: z.object({ password, code }).strict(),
      response: { 200: z.object({ recoveryCodes: z.array(z.string()) }), ...conflict },
    },
  }, async (request) => {
    const { userId } = requireSession(request);
    return store.sessions.confirmPassword(userId, request.body.password, clientOf(request), () => store.writesAs(userId).twoFactor.enable(userId, request.body.code));
  });

  r.post('/v1/auth/2fa/disable', {
    schema: {
      tags, security, summary: 'Turns two-factor authentication off, with the password and a current code or an unused recovery code',
      body: z.object({ password, code: code.optional(), recoveryCode: recoveryCode.optional() }).strict(),
      response: { 200: z.object({ twoFactor: z.literal(false) }) },
    },
  }, async (request) => {
    const { userId } = requireSession(request);
    await store.sessions.confirmPassword(userId, request.body.password, clientOf(request), () =>
      store.writesAs(userId).twoFactor.disable(userId, { code: request.body.code, recoveryCode: request.body.recoveryCode }));
    return { twoFactor: false as const };
  });
}
