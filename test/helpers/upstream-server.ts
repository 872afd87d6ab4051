/**
 * A test upstream for dial mode: a WebSocket server on 127.0.0.1 (wss when
 * given a certificate) that records every upgrade attempt with its
 * Authorization header, refuses (401) a wrong or missing bearer token when
 * one is expected, and hands the test each accepted connection to play the
 * consumer with.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import type { WireRecord } from '../../daemon/client/consumer.js';
import { waitFor } from './wait.js';

export interface UpgradeAttempt {
  readonly authorization: string | undefined;
  readonly protocol: string | undefined;
  readonly accepted: boolean;
}

export interface UpstreamConnection {
  readonly ws: WebSocket;
  readonly messages: Array<Record<string, unknown>>;
  readonly closed: Promise<number>;
  send(msg: unknown): void;
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Every record received so far, in order. */
  records(): WireRecord[];
  /** Says hello and waits for the welcome. */
  hello(consumer?: string): Promise<Record<string, unknown>>;
}

export interface TestUpstream {
  readonly url: string;
  readonly attempts: UpgradeAttempt[];
  readonly connections: UpstreamConnection[];
  /** Resolves with the n-th accepted connection (0-based). */
  connection(n: number, timeoutMs?: number): Promise<UpstreamConnection>;
  close(): Promise<void>;
}

export interface UpstreamServerOptions {
  /** When set, the upgrade must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Default: any free port. */
  readonly port?: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
}

export async function startUpstreamServer(opts: UpstreamServerOptions = {}): Promise<TestUpstream> {
  const attempts: UpgradeAttempt[] = [];
  const connections: UpstreamConnection[] = [];
  let server: Server;
  if (opts.tls === undefined) server = createServer();
  else {
    const ca = opts.tls.clientCaFile === undefined ? undefined : await readFile(opts.tls.clientCaFile);
    server = createTlsServer({ cert: await readFile(opts.tls.certFile), key: await readFile(opts.tls.keyFile), ca, requestCert: ca !== undefined, rejectUnauthorized: ca !== undefined });
  }
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('spillway.v1') ? 'spillway.v1' : false),
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      const authorization = info.req.headers.authorization;
      const accepted = opts.token === undefined || authorization === `Bearer ${opts.token}`;
      attempts.push({ authorization, protocol: info.req.headers['sec-websocket-protocol'], accepted });
      done(accepted, 401);
    },
  });
  wss.on('connection', (ws) => connections.push(wrap(ws)));
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${opts.tls === undefined ? 'ws' : 'wss'}://127.0.0.1:${port}/v1/upstream`,
    attempts,
    connections,
    connection: (n, timeoutMs = 10_000) => waitFor(() => connections[n], `upstream connection #${n + 1}`, timeoutMs),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function wrap(ws: WebSocket): UpstreamConnection {
  const messages: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
  ws.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const next = (type: string, timeoutMs = 10_000) => waitFor(() => messages.find((m) => m['type'] === type), `a ${type} message`, timeoutMs);
  return {
    ws,
    messages,
    closed,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    next,
    records: () => messages.filter((m) => m['type'] === 'records').flatMap((m) => m['records'] as WireRecord[]),
    hello: async (consumer = 'upstream') => {
      ws.send(JSON.stringify({ type: 'hello', v: 1, consumer }));
      return next('welcome');
    },
  };
}
