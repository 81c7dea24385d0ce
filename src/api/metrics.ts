import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Cache } from '../cache/cache.ts';
import type { LiveStreams } from './live.ts';
import { totalCounter } from '../service/metrics.ts';

/**
 * Metrics of the API itself, in the service's registry: requests and their latency per route and
 * status (the route's pattern, never the raw URL, so a client cannot create series), WebSocket
 * connections and messages, and the read cache's hits and misses.
 */
export function instrumentApi(app: FastifyInstance, registry: Registry, cache: Cache, live: LiveStreams): void {
  const wsStats = live.sockets;
  const requests = new Counter({ name: 'tradestore_http_requests_total', help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = new Histogram({
    name: 'tradestore_http_request_duration_seconds',
    help: 'Time from the request to the response, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs share one label: the path is the client's to choose.
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
  });
  const counter = (name: string, help: string, read: () => number) => totalCounter(registry, name, help, read);
  counter('tradestore_ws_messages_received_total', 'WebSocket frames received from clients', () => wsStats.received);
  counter('tradestore_ws_messages_sent_total', 'WebSocket frames sent to clients (stream events and replies)', () => wsStats.sent);
  counter('tradestore_ws_closed_by_server_total', 'WebSocket connections the server closed (bad frames, limits, slow readers)', () => wsStats.closedByServer);
  new Gauge({ name: 'tradestore_ws_connections', help: 'Open WebSocket connections', registers: [registry], collect() { this.set(wsStats.connections); } });
  totalCounter(
    registry,
    'tradestore_cache_reads_total',
    'Cached reads: served from the cache (hit), loaded and stored (miss), or loaded without the cache while Redis was away (bypass)',
    () => ({ hit: cache.stats.hits, miss: cache.stats.misses, bypass: cache.stats.bypassed }),
    'result',
  );
}
