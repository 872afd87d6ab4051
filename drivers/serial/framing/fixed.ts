/**
 * `fixed`: binary frames of exactly `frameBytes` bytes, back to back. There
 * is no resynchronisation: a byte lost on the wire shifts every later frame,
 * so use it only for links that do not lose bytes. No input is rejected.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink, Framer } from './framer.js';

export type FixedFraming = Extract<FramingConfig, { type: 'fixed' }>;

export class FixedFramer implements Framer {
  readonly #sink: FrameSink;
  /** The unfinished frame: `#frame[0, #length)`, `#length < frameBytes`. */
  readonly #frame: Buffer;
  #length = 0;

  constructor(cfg: FixedFraming, sink: FrameSink) {
    this.#sink = sink;
    this.#frame = Buffer.allocUnsafe(cfg.frameBytes);
  }

  get bufferedBytes(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    const size = this.#frame.length;
    let pos = 0;
    if (this.#length > 0) {
      pos = chunk.copy(this.#frame, this.#length, 0, Math.min(chunk.length, size - this.#length));
      this.#length += pos;
      if (this.#length < size) return;
      this.#length = 0;
      this.#sink.onFrame(Buffer.from(this.#frame));
    }
    for (; chunk.length - pos >= size; pos += size) this.#sink.onFrame(Buffer.from(chunk.subarray(pos, pos + size)));
    this.#length = chunk.copy(this.#frame, 0, pos);
  }

  reset(): number {
    const dropped = this.#length;
    this.#length = 0;
    return dropped;
  }
}
