/**
 * MQTT 3.1.1 packets built by hand, for tests that send what a library would
 * refuse to (topics that are not UTF-8, lengths no client would announce),
 * and a raw TCP client that records whether the broker closed on it.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { waitFor } from './wait.js';

export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

export function connectPacket(clientId: string, keepaliveSeconds = 30): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, keepaliveSeconds >> 8, keepaliveSeconds & 0xff]), str(clientId)]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

/** A PUBLISH whose topic is given as raw bytes. */
export function publishPacket(topic: Buffer, payload: Buffer, qos: 0 | 1, messageId = 1): Buffer {
  const id = qos > 0 ? Buffer.from([messageId >> 8, messageId & 0xff]) : Buffer.alloc(0);
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, id, payload]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1)]), remainingLength(body.length), body]);
}

export interface RawMqtt {
  readonly socket: Socket;
  /** Every byte the broker sent. */
  received(): Buffer;
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

/** Connects and waits for a CONNACK that accepts. */
export async function rawMqtt(port: number, clientId: string): Promise<RawMqtt> {
  const socket = tcpConnect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined);
  const closedP = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closedP.then(() => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write(connectPacket(clientId));
  const received = () => Buffer.concat(chunks);
  await waitFor(() => received().length >= 4 || undefined, 'a CONNACK', 5_000);
  const connack = received();
  if (connack[0] !== 0x20 || connack[3] !== 0) throw new Error(`connection refused: ${connack.subarray(0, 4).toString('hex')}`);
  return { socket, received, closed: closedP, isClosed: () => closed };
}
