/**
 * Listen mode: consumers connect to ws[s]://HOST:PORT/PATH with the
 * subprotocol `spillway.v1`. Owns the HTTP(S) server, the connection cap,
 * the deadline before a connection must become a session, and the sessions.
 *
 * TLS (`consumers.listen.tls`): the certificate and key are read at start;
 * with `clientCa` the server asks every client for a certificate and
 * refuses the handshake unless that CA signed it (mutual TLS), so such a
 * client never reaches HTTP.
 *
 * Nobody unauthenticated holds a connection long: the TLS handshake, then
 * the HTTP upgrade, then the hello each get `helloTimeoutMs`, and the
 * connection is dropped when one runs out.
 *
 * A consumer slot (`maxConsumers`, counting connections past the upgrade)
 * is freed the moment its session closes (error sent, or the socket gone);
 * the socket itself is terminated within CLOSE_GRACE_MS after an error.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { SpillwayError } from '../errors.js';
import type { ListenTlsConfig } from './config.js';
import { SUBPROTOCOL } from './protocol.js';
import { ConsumerSession, type SessionContext, type SessionOptions } from './session.js';
import { SpillwaySocket } from './spillway-socket.js';
import { readOptionalPemFile, readPemFile } from './tls-files.js';

export interface ListenOptions extends SessionOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly maxConsumers: number;
  /** Absent: plain ws://. */
  readonly tls?: ListenTlsConfig;
}

const TLS_KEY = 'consumers.listen.tls';

export class WsListener {
  readonly #opts: ListenOptions;
  readonly #ctx: SessionContext;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<ConsumerSession>();
  /** Connections that are not sessions yet, with the timer that drops them. */
  readonly #pending = new Map<Duplex, NodeJS.Timeout>();
  #server: Server | undefined;

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
  }

  get tls(): boolean {
    return this.#opts.tls !== undefined;
  }

  async start(): Promise<string> {
    const server = await this.#createServer();
    this.#server = server;
    server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new SpillwayError('LISTEN', `consumer endpoint cannot listen on ${this.#opts.host}:${this.#opts.port}: ${err.message}`, { cause: err })));
      server.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return `${this.tls ? 'wss' : 'ws'}://${this.#opts.host}:${port}${this.#opts.path}`;
  }

  /** Stops accepting connections. */
  stopAccepting(): void {
    this.#server?.close();
  }

  /** Sends `shutting_down` to every consumer and closes them. */
  closeAll(): void {
    for (const s of this.#sessions) s.fail('shutting_down', 'the daemon is stopping');
    this.#sessions.clear();
    for (const timer of this.#pending.values()) clearTimeout(timer);
    this.#pending.clear();
    this.#server?.closeAllConnections();
  }

  /** Sends a daemon message (a `loss` notice) to every consumer that said hello (of `group`, when given); returns how many got it. */
  broadcast(text: string, group?: string): number {
    let n = 0;
    for (const s of this.#sessions) if (s.notify(text, group)) n++;
    return n;
  }

  async #createServer(): Promise<Server> {
    const opts = this.#opts;
    const onRequest: RequestListener = (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      res.end(`connect with a WebSocket to ${opts.path} (subprotocol ${SUBPROTOCOL})\n`);
    };
    const tls = opts.tls;
    if (tls === undefined) {
      const server = createServer(onRequest);
      server.on('connection', (socket) => this.#deadline(socket));
      return server;
    }
    // One after another: when several cannot be read, the first is named, always the same one.
    const cert = await readPemFile(tls.cert, `${TLS_KEY}.cert`);
    const key = await readPemFile(tls.key, `${TLS_KEY}.key`);
    const ca = await readOptionalPemFile(tls.clientCa, `${TLS_KEY}.clientCa`);
    let server: Server;
    try {
      server = createTlsServer({ cert, key, ca, requestCert: ca !== undefined, rejectUnauthorized: ca !== undefined, handshakeTimeout: opts.helloTimeoutMs }, onRequest);
    } catch (err) {
      throw new SpillwayError('CONFIG_READ', `${TLS_KEY}: cert ${JSON.stringify(tls.cert)} and key ${JSON.stringify(tls.key)} are not a usable PEM certificate and matching key: ${(err as Error).message}`, { cause: err });
    }
    server.on('secureConnection', (socket: Socket) => this.#deadline(socket));
    server.on('tlsClientError', (err: Error & { code?: string }, socket: Socket) => {
      this.#ctx.counters.consumerErrors.inc(['tls_handshake']);
      this.#ctx.log.debug({ event: 'consumer_tls_refused', remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, code: err.code, err: err.message }, 'TLS handshake refused');
    });
    return server;
  }

  /** A connection must be upgraded within helloTimeoutMs (then the session's own hello timer runs). */
  #deadline(socket: Duplex): void {
    const timer = setTimeout(() => {
      this.#pending.delete(socket);
      socket.destroy();
    }, this.#opts.helloTimeoutMs);
    timer.unref();
    this.#pending.set(socket, timer);
    socket.once('close', () => this.#upgraded(socket));
  }

  #upgraded(socket: Duplex): void {
    clearTimeout(this.#pending.get(socket));
    this.#pending.delete(socket);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#upgraded(socket);
    const path = (req.url ?? '').split('?')[0];
    if (path !== this.#opts.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      if (this.#sessions.size >= this.#opts.maxConsumers) {
        new ConsumerSession(ws, remote, this.#opts, this.#ctx).fail('too_many_consumers', `at most ${this.#opts.maxConsumers} consumers may connect`);
        return;
      }
      // The slot is free as soon as the session closes, not when the peer answers the close.
      const session: ConsumerSession = new ConsumerSession(ws, remote, this.#opts, this.#ctx, { onClosed: () => this.#sessions.delete(session) });
      this.#sessions.add(session);
    });
  }
}
