import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { TIMEFRAMES } from '../../ingest/events/feeds.ts';
import { requireScope } from '../auth.ts';
import * as res from '../responses.ts';
import { dateParam, symbolParam, timeRange } from '../params.ts';

const tags = ['ML models (API key: read to see, admin to register and activate)'];
const security = [{ apiKey: [] }];
const id = z.object({ id: z.string().regex(/^[1-9]\d{0,17}$/, 'must be a model id') });
const moment = z.union([z.string().datetime({ offset: true }), z.number().int()]).transform((v) => new Date(v));
const score = z.string().regex(/^-?\d{1,20}(\.\d{1,18})?$/, 'must be a decimal string');

/** Seed 003's model registry and its predictions' accuracy (docs/MODELS.md). */
export function modelRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/models', {
    schema: {
      tags, security, summary: 'Model versions, newest first: of a symbol, timeframe or name, or only the active ones',
      querystring: z.object({ symbol: symbolParam.optional(), timeframe: z.enum(TIMEFRAMES).optional(), name: z.string().max(100).optional(), active: z.enum(['true', 'false']).optional() }),
      response: { 200: res.models },
    },
  }, async (request) => {
    requireScope(request, 'read');
    const q = request.query;
    return { models: await store.models.list({ symbol: q.symbol, timeframe: q.timeframe, name: q.name, active: q.active === 'true' }) };
  });

  r.post('/v1/models', {
    schema: {
      tags, security, summary: 'Registers a model version, inactive',
      body: z.object({
        name: z.string().min(1).max(100),
        modelType: z.string().min(1).max(50),
        version: z.string().min(1).max(20),
        symbol: symbolParam,
        timeframe: z.enum(TIMEFRAMES),
        features: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]),
        hyperparameters: z.record(z.string(), z.unknown()).optional(),
        trainingDataStart: moment.optional(),
        trainingDataEnd: moment.optional(),
        validationScore: score.optional(),
        testScore: score.optional(),
        modelPath: z.string().max(255).optional(),
      }),
      response: { 201: res.model },
    },
  }, async (request, reply) => {
    requireScope(request, 'admin');
    return reply.code(201).send(await store.models.register(request.body));
  });

  r.get('/v1/models/:id', { schema: { tags, security, summary: 'One model version', params: id, response: { 200: res.model } } }, async (request) => {
    requireScope(request, 'read');
    return store.models.get(request.params.id);
  });

  r.post('/v1/models/:id/activate', {
    schema: { tags, security, summary: 'Makes this version the active one of its symbol and timeframe (the previous one is deactivated)', params: id, response: { 200: res.model } },
  }, async (request) => {
    requireScope(request, 'admin');
    return store.models.activate(request.params.id);
  });

  r.get('/v1/models/:id/accuracy', {
    schema: {
      tags, security, summary: "The accuracy of this version's predictions made in [from, to): MAE, RMSE, MAPE, directional accuracy, confidence calibration",
      params: id, querystring: timeRange(z.object({ from: dateParam, to: dateParam }), 'from', 'to'), response: { 200: res.modelAccuracy },
    },
  }, async (request) => {
    requireScope(request, 'read');
    return store.models.accuracy(request.params.id, request.query);
  });
}
