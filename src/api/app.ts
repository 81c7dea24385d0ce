import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { Config } from '../config.ts';
import { RedisBus } from '../bus/redis.ts';
import type { Store } from '../store/store.ts';
import { registerAuth } from './auth.ts';
import { fallbackStore } from './rateLimitStore.ts';
import { errorHandler, errorResponses } from './errors.ts';
import { LiveStreams } from './live.ts';
import { instrumentApi } from './metrics.ts';
import type { Registry } from 'prom-client';
import { accountRoutes } from './routes/account.ts';
import { strategyRoutes } from './routes/strategies.ts';
import { backtestRoutes } from './routes/backtests.ts';
import { riskRoutes } from './routes/risk.ts';
import { modelRoutes } from './routes/models.ts';
import { adminRoutes } from './routes/admin.ts';
import { authRoutes } from './routes/auth.ts';
import { binanceRoutes } from './routes/binance.ts';
import { marketRoutes } from './routes/market.ts';
import { STREAM_PATHS, streamRoutes } from './routes/streams.ts';
import { dashboardRoutes } from '../web/dashboard.ts';

/** Routes that are never rate limited: the operator's probes and the documentation. */
const UNLIMITED = /^\/(health|metrics|docs)(\/|$)|^\/$|^\/dashboard\//;

/**
 * The HTTP and WebSocket API on an existing Fastify instance (with the zod validator and serializer compilers set): native REST under /v1, Binance's
 * REST format under /api/v3, Binance market streams on /ws and /stream, OpenAPI at /docs.
 * Returns the live-stream hub, to be closed with the server.
 */
export async function registerApi(app: FastifyInstance, store: Store, config: Pick<Config, 'api' | 'bus' | 'monitor' | 'databaseUrl' | 'backup'>, registry?: Registry): Promise<LiveStreams> {
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    errorHandler(Object.assign(new Error(`no route ${request.method} ${request.url.split('?')[0]}`), { statusCode: 404, code: 'not_found' }), request, reply));
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'tradestore API', version: '1', description: 'Market data, account data and live streams. Decimals are strings; times are epoch milliseconds unless named *At.' },
      components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } } },
    },
    transform: jsonSchemaTransform,
    // The WebSocket endpoints are routes @fastify/websocket hides from the document: added here.
    transformObject: (document) => {
      const openapi = (document as { openapiObject: { paths?: object } }).openapiObject;
      return { ...openapi, paths: { ...openapi.paths, ...STREAM_PATHS } } as never;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Every operation's error answers, in the format of its API (registered before the routes).
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { hide?: boolean; response?: Record<number, unknown> } | undefined;
    if (!schema || schema.hide || route.url.startsWith('/docs')) return;
    schema.response = { ...errorResponses(route.url), ...schema.response };
  });
  await app.register(rateLimit, {
    global: true,
    max: config.api.rateLimit,
    timeWindow: config.api.rateWindowMs,
    // Seed 001's layout: rate_limit:{user}:{endpoint}, a counter that expires with the window.
    keyGenerator: (request) => `${request.identity?.userId ?? `anonymous-${request.ip}`}:${request.routeOptions.url ?? 'unknown'}`,
    allowList: (request) => UNLIMITED.test(request.url),
    store: fallbackStore(store.bus instanceof RedisBus ? store.bus.client : null, `${config.bus.keyPrefix}rate_limit:`),
    errorResponseBuilder: (_request, context) =>
      Object.assign(new Error(`rate limit exceeded: ${context.max} requests per ${context.after}; retry after ${Math.ceil(context.ttl / 1000)} s`), { statusCode: 429 }),
  });
  // Frames above the limit close the connection with 1009 before they are buffered whole.
  // Keys are checked after the rate limiter exists: invalid keys are limited per client address.
  registerAuth(app, store.apiKeys, store.sessions, { failureLimit: config.api.authFailureLimit, windowMs: config.api.rateWindowMs });
  await app.register(websocket, { options: { maxPayload: config.api.wsMaxFrameBytes } });
  const live = new LiveStreams(store);
  if (registry) instrumentApi(app, registry, store.bus.cache, live);
  marketRoutes(app, store);
  authRoutes(app, store);
  accountRoutes(app, store);
  strategyRoutes(app, store);
  backtestRoutes(app, store);
  riskRoutes(app, store);
  modelRoutes(app, store);
  adminRoutes(app, store, { stream: config.bus.stream, thresholds: config.monitor.thresholds, databaseUrl: config.databaseUrl, backup: config.backup });
  binanceRoutes(app, store, config.api);
  streamRoutes(app, live, { connectLimit: config.api.wsConnectLimit, pingMs: config.api.wsPingMs });
  dashboardRoutes(app);
  return live;
}
