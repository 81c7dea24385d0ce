import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Cache } from '../cache/cache.ts';
import type { LiveStreams } from './live.ts';

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
  const counted = (name: string, help: string, read: () => number, labels?: Record<string, string>) => {
    let last = 0;
    return { name, help, read, labels, last };
  };
  const counters = [
    counted('tradestore_ws_messages_received_total', 'WebSocket frames received from clients', () => wsStats.received),
    counted('tradestore_ws_messages_sent_total', 'WebSocket frames sent to clients (stream events and replies)', () => wsStats.sent),
    counted('tradestore_ws_closed_by_server_total', 'WebSocket connections the server closed (bad frames, limits, slow readers)', () => wsStats.closedByServer),
  ];
  for (const c of counters) {
    new Counter({
      name: c.name,
      help: c.help,
      registers: [registry],
      collect() {
        const value = c.read();
        if (value > c.last) this.inc(value - c.last);
        c.last = value;
      },
    });
  }
  new Gauge({ name: 'tradestore_ws_connections', help: 'Open WebSocket connections', registers: [registry], collect() { this.set(wsStats.connections); } });
  const last = { hit: 0, miss: 0, bypass: 0 };
  new Counter({
    name: 'tradestore_cache_reads_total',
    help: 'Cached reads: served from the cache (hit), loaded and stored (miss), or loaded without the cache while Redis was away (bypass)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const now = { hit: cache.stats.hits, miss: cache.stats.misses, bypass: cache.stats.bypassed };
      for (const result of ['hit', 'miss', 'bypass'] as const) {
        if (now[result] > last[result]) this.inc({ result }, now[result] - last[result]);
        last[result] = now[result];
      }
    },
  });
}
