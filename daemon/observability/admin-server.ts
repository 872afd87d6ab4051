/**
 * The admin HTTP port (loopback by default): `GET /metrics` (Prometheus
 * text), `GET /healthz` (JSON; 200 while healthy, 503 with reasons),
 * `GET /status` (JSON for `spillway status`), `GET /` (a live status page)
 * and `GET /charts` (its charts, an SVG fragment).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpillwayError } from '../errors.js';
import type { Status } from './status.js';
import { renderStatusPage, statusPageHeaders } from './status-page.js';

/** What /healthz serves (health.ts judges it): 200 while `healthy`, else 503. */
export interface Health {
  readonly healthy: boolean;
}

export interface AdminHandlers {
  readonly metrics: () => string;
  readonly health: () => Health;
  readonly status: () => Status;
  /** The status page's charts (an SVG fragment) and how often the page refetches them; without, the page has none. */
  readonly charts?: () => string;
  readonly chartIntervalMs?: number;
}

export class AdminServer {
  readonly #server: Server;
  readonly #host: string;
  readonly #port: number;

  constructor(host: string, port: number, handlers: AdminHandlers) {
    this.#host = host;
    this.#port = port;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(handlers.metrics());
      } else if (path === '/healthz') {
        const h = handlers.health();
        res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h) + '\n');
      } else if (path === '/status') {
        // Always 200: the body says whether it is degraded; /healthz is the probe.
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(handlers.status()) + '\n');
      } else if (path === '/') {
        const charts = handlers.charts?.() ?? '';
        res.writeHead(200, statusPageHeaders()).end(renderStatusPage({ charts, status: handlers.status(), chartIntervalMs: handlers.chartIntervalMs ?? 5_000 }));
      } else if (path === '/charts') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(handlers.charts?.() ?? '');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /, /status, /metrics or /healthz\n');
      }
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err) => reject(new SpillwayError('LISTEN', `admin port cannot listen on ${this.#host}:${this.#port}: ${err.message}`, { cause: err })));
      this.#server.listen(this.#port, this.#host, () => resolve());
    });
    const { port } = this.#server.address() as AddressInfo;
    return `http://${this.#host}:${port}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
