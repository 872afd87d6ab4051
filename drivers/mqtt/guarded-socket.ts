/**
 * A client's TCP socket as aedes sees it: bytes pass through unchanged after
 * a PacketScanner has read their framing; the first refusal destroys the
 * socket before the broker's parser gets the chunk, so an announced 256 MB
 * PUBLISH costs one read, not 256 MB of buffer.
 *
 * Reading follows the broker (a Duplex with its own readable buffer: the
 * socket is paused when aedes stops reading, e.g. while a PUBACK is
 * withheld); writes go straight to the socket, corked per batch.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { PacketScanner, type ScanRefusal } from './packet-scanner.js';

export class GuardedSocket extends Duplex {
  readonly #socket: Socket;

  constructor(socket: Socket, maxPayloadBytes: number, onRefused: (refusal: ScanRefusal) => void) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    const scanner = new PacketScanner(maxPayloadBytes);
    socket.on('data', (chunk: Buffer) => {
      const refusal = scanner.scan(chunk);
      if (refusal !== undefined) {
        socket.removeAllListeners('data');
        onRefused(refusal);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('drain', () => this.emit('socket-drain'));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#socket.write(chunk)) cb();
    else this.once('socket-drain', () => cb());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const socket = this.#socket;
    socket.cork();
    let ok = true;
    for (const { chunk } of chunks) ok = socket.write(chunk);
    socket.uncork();
    if (ok) cb();
    else this.once('socket-drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#socket.destroy();
    cb(err);
  }
}
