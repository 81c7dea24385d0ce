import type { FastifyInstance } from 'fastify';
import { inetOf } from '../security/audit.ts';
import type { Database } from '../database/types.ts';

/** One API request as seed 003's api_usage keeps it. */
export interface UsageRow {
  at: Date;
  userId: string | null;
  apiKeyId: string | null;
  /** The route's pattern (/v1/markets/:symbol/klines), never the raw URL: a client cannot flood it with distinct values. */
  endpoint: string;
  method: string;
  status: number;
  responseMs: number;
  ip: string | null;
  userAgent: string | null;
  requestBytes: number | null;
  responseBytes: number | null;
}

/** Paths not recorded: the monitors' own polling (/health, /metrics) and the docs. */
const UNRECORDED = /^\/(health|metrics|docs)(\/|$)/;
const MAX_USER_AGENT = 500;

const size = (value: unknown): number | null => {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : NaN;
  return Number.isSafeInteger(n) && n >= 0 && n <= 2_147_483_647 ? n : null;
};

/**
 * Seed 003's api_usage, recorded by the API itself and written off the request path: each
 * answered request is buffered in memory and the buffer is written every `flushMs` in one
 * INSERT. The buffer is bounded (`maxBuffered`): past it, or when a write fails, rows are dropped
 * and counted (`dropped`), never retried into an unbounded queue and never failing a request.
 * `stop()` writes what is left.
 */
export class UsageRecorder {
  private buffer: UsageRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  written = 0;
  dropped = 0;

  constructor(
    private readonly db: Database,
    private readonly options: { flushMs?: number; maxBuffered?: number; log?: (line: string) => void } = {},
  ) {}

  record(row: UsageRow): void {
    if (this.buffer.length >= (this.options.maxBuffered ?? 10_000)) {
      this.dropped += 1;
      return;
    }
    this.buffer.push(row);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Writes the buffered rows (one INSERT), after any write still running. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  private async write(): Promise<void> {
    const rows = this.buffer;
    if (!rows.length) return;
    this.buffer = [];
    const col = <T>(f: (r: UsageRow) => T) => rows.map(f);
    try {
      await this.db.query(
        `INSERT INTO api_usage (timestamp, user_id, api_key_id, endpoint, method, status_code, response_time, ip_address, user_agent, request_size, response_size)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::int[], $8::inet[], $9::text[], $10::int[], $11::int[])`,
        [
          col((r) => r.at.toISOString()), col((r) => r.userId), col((r) => r.apiKeyId), col((r) => r.endpoint), col((r) => r.method), col((r) => r.status),
          col((r) => r.responseMs), col((r) => r.ip), col((r) => r.userAgent), col((r) => r.requestBytes), col((r) => r.responseBytes),
        ],
      );
      this.written += rows.length;
    } catch (error) {
      this.dropped += rows.length;
      this.options.log?.(`api usage: ${rows.length} rows not written (${(error as Error).message}); counted as dropped`);
    }
  }
}

/** Records every answered request of `app` (but /health, /metrics and /docs) into `recorder`. */
export function recordUsage(app: FastifyInstance, recorder: UsageRecorder): void {
  app.addHook('onResponse', async (request, reply) => {
    if (UNRECORDED.test(request.url.split('?')[0]!)) return;
    const identity = request.identity;
    const agent = request.headers['user-agent'];
    recorder.record({
      at: new Date(),
      userId: identity?.userId ?? null,
      apiKeyId: identity?.keyId && /^[0-9]{1,18}$/.test(identity.keyId) ? identity.keyId : null,
      endpoint: (request.routeOptions.url ?? 'unmatched').slice(0, 255),
      method: request.method.slice(0, 10),
      status: reply.statusCode >= 100 && reply.statusCode <= 599 ? reply.statusCode : 599,
      responseMs: Math.max(0, Math.round(reply.elapsedTime)),
      ip: inetOf(request.ip),
      userAgent: typeof agent === 'string' ? agent.replace(/\u0000/g, '').slice(0, MAX_USER_AGENT) : null,
      requestBytes: size(request.headers['content-length']),
      responseBytes: size(reply.getHeader('content-length')),
    });
  });
}
