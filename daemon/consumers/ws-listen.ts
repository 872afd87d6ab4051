/**
 * Listen mode: consumers connect to ws://HOST:PORT/PATH with the subprotocol
 * `spillway.v1`. Owns the HTTP server, the connection cap and the sessions.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { SpillwayError } from '../errors.js';
import { encodeError, SUBPROTOCOL } from './protocol.js';
import { ConsumerSession, type SessionContext, type SessionOptions } from './session.js';

export interface ListenOptions extends SessionOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly maxConsumers: number;
}

/** ws's close code for a frame above `maxPayload`. */
const CLOSE_TOO_BIG = 1009;

/**
 * ws refuses a frame above `maxPayload` while reading its header (so the
 * payload is never buffered) and closes at once with 1009. The protocol wants
 * an `error` message first: this subclass sends it just before that close.
 */
class SpillwaySocket extends WebSocket {
  override close(code?: number, data?: string | Buffer): void {
    if (code === CLOSE_TOO_BIG && this.readyState === WebSocket.OPEN) {
      this.send(encodeError('bad_message', 'frame exceeds the maximum frame size'));
    }
    super.close(code, data);
  }
}

export class WsListener {
  readonly #opts: ListenOptions;
  readonly #ctx: SessionContext;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<ConsumerSession>();

  constructor(opts: ListenOptions, ctx: SessionContext) {
    this.#opts = opts;
    this.#ctx = ctx;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes,
      perMessageDeflate: false,
      WebSocket: SpillwaySocket,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.#http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      res.end(`connect with a WebSocket to ${opts.path} (subprotocol ${SUBPROTOCOL})\n`);
    });
    this.#http.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', (err) => reject(new SpillwayError('LISTEN', `consumer endpoint cannot listen on ${this.#opts.host}:${this.#opts.port}: ${err.message}`, { cause: err })));
      this.#http.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
    const { port } = this.#http.address() as AddressInfo;
    return `ws://${this.#opts.host}:${port}${this.#opts.path}`;
  }

  /** Stops accepting connections. */
  stopAccepting(): void {
    this.#http.close();
  }

  /** Sends `shutting_down` to every consumer and closes them. */
  closeAll(): void {
    for (const s of this.#sessions) s.fail('shutting_down', 'the daemon is stopping');
    this.#sessions.clear();
    this.#http.closeAllConnections();
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== this.#opts.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      const session = new ConsumerSession(ws, remote, this.#opts, this.#ctx);
      if (this.#sessions.size >= this.#opts.maxConsumers) {
        session.fail('too_many_consumers', `at most ${this.#opts.maxConsumers} consumers may connect`);
        return;
      }
      this.#sessions.add(session);
      ws.on('close', () => this.#sessions.delete(session));
    });
  }
}
