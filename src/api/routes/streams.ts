import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { LiveStreams } from '../live.ts';

const MAX_STREAMS_PER_CONNECTION = 200;

/**
 * Binance's market-stream endpoints: /ws/<stream> (raw payloads), /stream?streams=a/b
 * (payloads wrapped as {"stream","data"}), and /ws with SUBSCRIBE / UNSUBSCRIBE /
 * LIST_SUBSCRIPTIONS frames.
 */
export function streamRoutes(app: FastifyInstance, live: LiveStreams): void {
  const connect = (socket: WebSocket, combined: boolean, initial: string[]) => {
    const active = new Map<string, Promise<() => Promise<void>>>();
    const send = (stream: string) => (data: object) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(combined ? { stream, data } : data));
    };
    const subscribe = async (names: string[]): Promise<string | null> => {
      for (const name of names) {
        if (active.has(name)) continue;
        if (active.size >= MAX_STREAMS_PER_CONNECTION) return `at most ${MAX_STREAMS_PER_CONNECTION} streams per connection`;
        const stream = await live.parse(name);
        if (!stream) return `unknown stream ${JSON.stringify(name)}: expected <symbol>@trade, <symbol>@kline_<interval> or <symbol>@ticker for a market of this venue`;
        active.set(name, live.subscribe(stream, send(name)));
      }
      return null;
    };
    const unsubscribe = async (names: string[]) => {
      for (const name of names) {
        const stop = active.get(name);
        active.delete(name);
        if (stop) await (await stop)();
      }
    };
    socket.on('close', () => void unsubscribe([...active.keys()]).catch(() => {}));
    socket.on('message', (raw: Buffer) => {
      void (async () => {
        let frame: { method?: unknown; params?: unknown; id?: unknown };
        try {
          frame = JSON.parse(raw.toString('utf8'));
        } catch {
          return socket.send(JSON.stringify({ error: { code: 3, msg: 'Invalid JSON: the frame is not JSON' } }));
        }
        const id = typeof frame.id === 'number' || typeof frame.id === 'string' ? frame.id : null;
        const params = Array.isArray(frame.params) && frame.params.every((p) => typeof p === 'string') ? (frame.params as string[]) : null;
        if (frame.method === 'LIST_SUBSCRIPTIONS') return socket.send(JSON.stringify({ result: [...active.keys()], id }));
        if ((frame.method === 'SUBSCRIBE' || frame.method === 'UNSUBSCRIBE') && params) {
          if (frame.method === 'UNSUBSCRIBE') {
            await unsubscribe(params);
            return socket.send(JSON.stringify({ result: null, id }));
          }
          const error = await subscribe(params);
          return socket.send(JSON.stringify(error ? { error: { code: 2, msg: error }, id } : { result: null, id }));
        }
        socket.send(JSON.stringify({ error: { code: 2, msg: 'expected {"method":"SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS","params":[…],"id":…}' }, id }));
      })().catch(() => {});
    });
    if (initial.length) {
      void subscribe(initial).then((error) => {
        if (error) socket.close(1008, error.slice(0, 120));
      });
    }
  };

  app.get('/ws', { websocket: true, schema: { hide: true } }, (socket) => connect(socket, false, []));
  app.get<{ Params: { stream: string } }>('/ws/:stream', { websocket: true, schema: { hide: true } }, (socket, request) =>
    connect(socket, false, [request.params.stream]));
  app.get<{ Querystring: { streams?: string } }>('/stream', { websocket: true, schema: { hide: true } }, (socket, request) =>
    connect(socket, true, (request.query.streams ?? '').split('/').filter(Boolean)));
}
