import type { FastifyInstance, FastifyRequest } from 'fastify';
import { clientAddress } from '../auth.ts';
import type { WebSocket } from 'ws';
import type { LiveStreams } from '../live.ts';

const MAX_STREAMS_PER_CONNECTION = 200;
/** Incoming frames per second and connection (Binance allows 5; a burst of a few more is let through). */
const MAX_FRAMES_PER_SECOND = 10;
/** A client that lets this much queue up unread is too slow for the streams: it is disconnected. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** The largest control frame reason is 123 bytes (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;

/** A close reason cut to what the protocol allows, on a character boundary. */
export function closeReason(text: string): string {
  let reason = text;
  while (Buffer.byteLength(reason) > MAX_REASON_BYTES) reason = reason.slice(0, -1);
  // A lone high surrogate at the end would be encoded as U+FFFD (3 bytes): cut it too.
  return /[\uD800-\uDBFF]$/.test(reason) ? reason.slice(0, -1) : reason;
}

/** Closes a socket whatever its state; a socket that cannot close is terminated. */
function closeSocket(socket: WebSocket, code: number, reason: string, stats: { closedByServer: number }): void {
  if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) stats.closedByServer += 1;
  try {
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, closeReason(reason));
  } catch {
    socket.terminate();
  }
}

/**
 * Binance's market-stream endpoints: /ws/<stream> (raw payloads), /stream?streams=a/b
 * (payloads wrapped as {"stream","data"}), and /ws with SUBSCRIBE / UNSUBSCRIBE /
 * LIST_SUBSCRIPTIONS frames.
 *
 * Nothing a client sends ends anywhere but in a reply frame or a closed socket: every handler's
 * failure is caught here. Memory per client is bounded: frames are at most TRADESTORE_WS_MAX_FRAME_BYTES
 * (the server closes with 1009 above it), at most MAX_FRAMES_PER_SECOND are read per second
 * (1008 above it), and a client that does not read what it is sent is disconnected (1008) once
 * MAX_BUFFERED_BYTES wait for it.
 */
export function streamRoutes(app: FastifyInstance, live: LiveStreams, { connectLimit, pingMs }: { connectLimit: number; pingMs: number }): void {
  const wsStats = live.sockets;
  const connect = (socket: WebSocket, combined: boolean, initial: string[]) => {
    const active = new Map<string, () => Promise<void>>();
    let closed = false;
    wsStats.connections += 1;
    // A ping every pingMs, as Binance's servers send; a connection that leaves three unanswered is gone.
    let unanswered = 0;
    socket.on('pong', () => {
      unanswered = 0;
    });
    const pinger = setInterval(() => {
      // A peer that answers nothing would not answer a close handshake either: it is cut off.
      if (unanswered >= 3) {
        wsStats.closedByServer += 1;
        return socket.terminate();
      }
      unanswered += 1;
      try {
        socket.ping();
      } catch {
        closeSocket(socket, 1011, 'could not ping', wsStats);
      }
    }, pingMs);
    // Stream events and replies alike count against the unread output: a client that never reads is closed.
    const send = (text: string) => {
      try {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) return closeSocket(socket, 1008, 'too slow: the client does not read what it is sent', wsStats);
        socket.send(text);
        wsStats.sent += 1;
      } catch {
        closeSocket(socket, 1011, 'could not send', wsStats);
      }
    };
    const reply = (payload: object) => send(JSON.stringify(payload));
    const listener = (stream: string) => {
      const prefix = `{"stream":${JSON.stringify(stream)},"data":`;
      return (json: string) => send(combined ? `${prefix}${json}}` : json);
    };
    const subscribe = async (names: string[]): Promise<string | null> => {
      for (const name of names) {
        if (closed) return null;
        if (active.has(name)) continue;
        if (active.size >= MAX_STREAMS_PER_CONNECTION) return `at most ${MAX_STREAMS_PER_CONNECTION} streams per connection`;
        const stream = await live.parse(name);
        if (!stream) return `unknown stream ${JSON.stringify(name.slice(0, 60))}: expected <symbol>@trade, @aggTrade, @kline_<interval>, @ticker, @miniTicker, @bookTicker or @depth5|10|20 for a market of this venue, !ticker@arr or !miniTicker@arr`;
        const stop = await live.subscribe(stream, listener(name));
        // The socket may have closed while the subscription was made.
        if (closed) await stop();
        else active.set(name, stop);
      }
      return null;
    };
    const unsubscribe = async (names: string[]) => {
      for (const name of names) {
        const stop = active.get(name);
        active.delete(name);
        if (stop) await stop();
      }
    };
    // What went wrong inside (a database address, SQL) is for the operator's log, not for the client.
    const failed = (error: unknown) => {
      app.log.error({ err: error }, 'WebSocket request failed');
      return 'internal error';
    };
    // Frames are handled one at a time, in order: a SUBSCRIBE still under way is finished before the
    // next frame (another SUBSCRIBE of the same stream, an UNSUBSCRIBE) looks at the subscriptions.
    let chain: Promise<unknown> = Promise.resolve();
    const inOrder = (task: () => Promise<unknown>) => {
      chain = chain.then(task).catch((error) => closeSocket(socket, 1011, failed(error), wsStats));
    };
    socket.on('close', () => {
      clearInterval(pinger);
      closed = true;
      wsStats.connections -= 1;
      void unsubscribe([...active.keys()]).catch(() => {});
    });
    let second = 0;
    let frames = 0;
    socket.on('message', (raw: Buffer, isBinary: boolean) => {
      wsStats.received += 1;
      const now = Math.floor(Date.now() / 1000);
      if (now !== second) [second, frames] = [now, 0];
      if (++frames > MAX_FRAMES_PER_SECOND) return closeSocket(socket, 1008, `more than ${MAX_FRAMES_PER_SECOND} frames per second`, wsStats);
      inOrder(async () => {
        if (closed) return;
        let frame: { method?: unknown; params?: unknown; id?: unknown };
        try {
          if (isBinary) throw new Error('binary');
          frame = JSON.parse(raw.toString('utf8'));
          if (typeof frame !== 'object' || frame === null) throw new Error('not an object');
        } catch {
          return reply({ error: { code: 3, msg: 'Invalid JSON: the frame is not a JSON object' } });
        }
        // Binance's ids: a 64-bit integer, or a string of at most 36 characters; anything else is answered with null.
        const id = (typeof frame.id === 'number' && Number.isSafeInteger(frame.id)) || (typeof frame.id === 'string' && frame.id.length <= 36) ? frame.id : null;
        try {
          const params = Array.isArray(frame.params) && frame.params.every((p) => typeof p === 'string') ? (frame.params as string[]) : null;
          if (frame.method === 'LIST_SUBSCRIPTIONS') return reply({ result: [...active.keys()], id });
          if ((frame.method === 'SUBSCRIBE' || frame.method === 'UNSUBSCRIBE') && params) {
            if (frame.method === 'UNSUBSCRIBE') {
              await unsubscribe(params);
              return reply({ result: null, id });
            }
            const error = await subscribe(params);
            return reply(error ? { error: { code: 2, msg: error }, id } : { result: null, id });
          }
          reply({ error: { code: 2, msg: 'expected {"method":"SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS","params":[…],"id":…}' }, id });
        } catch (error) {
          reply({ error: { code: 1, msg: failed(error) }, id });
        }
      });
    });
    if (initial.length) {
      inOrder(async () => {
        const error = await subscribe(initial);
        if (error) closeSocket(socket, 1008, error, wsStats);
      });
    }
  };

  // Connections are counted apart from requests: per client, `connectLimit` per 5 minutes (Binance's 300).
  const config = {
    rateLimit: {
      max: connectLimit,
      timeWindow: 5 * 60_000,
      // One count for the three endpoints together (the global key names the route).
      keyGenerator: (request: FastifyRequest) => `${request.identity?.userId ?? `anonymous-${clientAddress(request.ip)}`}:websocket`,
    },
  };
  app.get('/ws', { websocket: true, config }, (socket) => connect(socket, false, []));
  app.get('/ws/:stream', { websocket: true, config }, (socket, request) =>
    connect(socket, false, [String((request.params as { stream?: unknown }).stream ?? '')]));
  app.get('/stream', { websocket: true, config }, (socket, request) => {
    // A repeated parameter arrives as an array: only a single string names streams.
    const streams = (request.query as { streams?: unknown }).streams;
    connect(socket, true, (typeof streams === 'string' ? streams : '').split('/').filter(Boolean));
  });
}

const STREAM_DESCRIPTION =
  'A WebSocket endpoint: GET with Upgrade: websocket, answered 101 Switching Protocols. Streams: <symbol>@trade, @aggTrade, @kline_<interval> ' +
  '(and @kline_<interval>@+08:00 in a time zone), @ticker, @miniTicker, @bookTicker, @depth5, @depth10, @depth20 (the symbol in lower case), !ticker@arr, ' +
  '!miniTicker@arr. The server pings every TRADESTORE_WS_PING_MS and closes a connection that leaves 3 pings unanswered. Frames of at most TRADESTORE_WS_MAX_FRAME_BYTES (closed with 1009 above), at most 10 frames a ' +
  'second (1008 above); a client that does not read what it is sent is closed (1008). Connections per client: TRADESTORE_WS_CONNECT_LIMIT per 5 minutes (429).';
const streamOperation = (summary: string, parameters: object[]) => ({
  get: {
    tags: ['Binance-compatible market streams (WebSocket)'],
    summary,
    description: STREAM_DESCRIPTION,
    parameters,
    responses: { 101: { description: 'Switching Protocols: the WebSocket is open' }, 429: { description: 'Too many connections from this client' } },
  },
});

/** The WebSocket endpoints in the OpenAPI document (as operations that upgrade). */
export const STREAM_PATHS = {
  '/ws': streamOperation('Raw streams, chosen with {"method":"SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS","params":[…],"id":…} frames', []),
  '/ws/{stream}': streamOperation('One raw stream: its payloads as Binance sends them', [
    { name: 'stream', in: 'path', required: true, schema: { type: 'string', example: 'tata_inr@trade' } },
  ]),
  '/stream': streamOperation('Combined streams: payloads wrapped as {"stream","data"}', [
    { name: 'streams', in: 'query', required: true, schema: { type: 'string', example: 'tata_inr@trade/tata_inr@kline_1m' } },
  ]),
};
