import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const here = (name: string) => new URL(`../../src/web/${name}`, import.meta.url);

/** Reads a dashboard file, from the source tree (the package ships src/web beside dist). */
function asset(name: string): string {
  return readFileSync(here(name), 'utf8');
}

/**
 * The live dashboard at `/`: a page, its script, and TradingView's lightweight-charts from
 * node_modules; the strategy page at `/dashboard/strategies` (it reads the API with the key the
 * viewer gives it, from the URL fragment or a form, never from the query string).
 */
export function dashboardRoutes(app: FastifyInstance): void {
  const charts = join(dirname(createRequire(import.meta.url).resolve('lightweight-charts/package.json')), 'dist', 'lightweight-charts.standalone.production.js');
  const files = {
    page: asset('dashboard.html'),
    script: asset('dashboard.js'),
    strategiesPage: asset('strategies.html'),
    strategiesScript: asset('strategies.js'),
    charts: readFileSync(charts, 'utf8'),
  };
  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.type('text/html; charset=utf-8').send(files.page));
  app.get('/dashboard/app.js', { schema: { hide: true } }, (_request, reply) => reply.type('text/javascript; charset=utf-8').send(files.script));
  app.get('/dashboard/strategies', { schema: { hide: true } }, (_request, reply) => reply.type('text/html; charset=utf-8').send(files.strategiesPage));
  app.get('/dashboard/strategies.js', { schema: { hide: true } }, (_request, reply) => reply.type('text/javascript; charset=utf-8').send(files.strategiesScript));
  app.get('/dashboard/lightweight-charts.js', { schema: { hide: true } }, (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(files.charts));
}
