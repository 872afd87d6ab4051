/**
 * A raw WebSocket client that records every message and the close, for
 * tests that misbehave on purpose.
 */
import WebSocket from 'ws';
import { waitFor } from './wait.js';

export interface RawClient {
  readonly ws: WebSocket;
  readonly messages: Array<Record<string, unknown>>;
  readonly closed: Promise<number>;
  send(msg: unknown): void;
  /** Resolves with the first message of this type. */
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export async function rawClient(url: string, protocol: string | undefined = 'spillway.v1'): Promise<RawClient> {
  const ws = new WebSocket(url, protocol === undefined ? [] : [protocol]);
  const messages: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    closed,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    next: (type, timeoutMs = 5_000) => waitFor(() => messages.find((m) => m['type'] === type), `a ${type} message`, timeoutMs),
  };
}
