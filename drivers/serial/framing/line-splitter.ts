/**
 * Cuts a byte stream at a delimiter, holding at most `maxFrameBytes` bytes of
 * an unfinished line. The shared base of the text framings.
 *
 *   input ──► indexOf(delimiter) ──► line ≤ maxFrameBytes ──► onLine(copy)
 *                  │                 line > maxFrameBytes ──► onOversized() once,
 *                  │                   then bytes are dropped up to the next delimiter
 *                  └─ no delimiter yet: bytes wait in `#line` (fixed, maxFrameBytes)
 *
 * A delimiter split across chunks: the input's last bytes that match the
 * start of the delimiter are kept as a count (`#matched`), not as bytes; the
 * next push puts them back in front. So `bufferedBytes` (stored line bytes)
 * never exceeds `maxFrameBytes`, and any chunking of the same stream gives
 * the same lines and the same rejects (property-tested).
 *
 * `maxFrameBytes` bounds the bytes before the delimiter (a `\r` included).
 */

export interface LineSink {
  readonly onLine: (line: Buffer) => void;
  /** Once per over-long run, when the run first passes `maxFrameBytes`. */
  readonly onOversized: () => void;
}

export class LineSplitter {
  readonly #delimiter: Buffer;
  readonly #maxFrameBytes: number;
  readonly #sink: LineSink;
  /** The unfinished line: `#line[0, #length)`. Preallocated, never grown. */
  readonly #line: Buffer;
  #length = 0;
  /** The input so far ends with `#delimiter[0, #matched)`; always < delimiter length. */
  #matched = 0;
  /** In an over-long run: bytes are dropped until the next delimiter. */
  #discarding = false;

  constructor(delimiter: Buffer, maxFrameBytes: number, sink: LineSink) {
    if (delimiter.length === 0) throw new RangeError('empty delimiter');
    this.#delimiter = delimiter;
    this.#maxFrameBytes = maxFrameBytes;
    this.#sink = sink;
    this.#line = Buffer.allocUnsafe(maxFrameBytes);
  }

  get bufferedBytes(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    const delimiter = this.#delimiter;
    let data = chunk;
    if (this.#matched > 0) {
      data = Buffer.concat([delimiter.subarray(0, this.#matched), chunk]);
      this.#matched = 0;
    }
    let pos = 0;
    for (let at = data.indexOf(delimiter, pos); at >= 0; at = data.indexOf(delimiter, pos)) {
      this.#endLine(data.subarray(pos, at));
      pos = at + delimiter.length;
    }
    const rest = data.subarray(pos);
    const matched = endMatch(rest, delimiter);
    this.#append(rest.subarray(0, rest.length - matched));
    this.#matched = matched;
  }

  /** Drops the unfinished line; returns how many bytes it had. */
  reset(): number {
    const dropped = this.#length + this.#matched;
    this.#length = 0;
    this.#matched = 0;
    this.#discarding = false;
    return dropped;
  }

  #append(bytes: Buffer): void {
    if (this.#discarding || bytes.length === 0) return;
    if (this.#length + bytes.length > this.#maxFrameBytes) {
      this.#length = 0;
      this.#discarding = true;
      this.#sink.onOversized();
      return;
    }
    bytes.copy(this.#line, this.#length);
    this.#length += bytes.length;
  }

  #endLine(tail: Buffer): void {
    if (this.#discarding) {
      // The over-long run ends here; it was counted when it passed the bound.
      this.#discarding = false;
      return;
    }
    const length = this.#length + tail.length;
    this.#length = 0;
    if (length > this.#maxFrameBytes) {
      this.#sink.onOversized();
      return;
    }
    // A copy: `tail` may be a view into a large read buffer.
    const line = Buffer.allocUnsafe(length);
    this.#line.copy(line, 0, 0, length - tail.length);
    tail.copy(line, length - tail.length);
    this.#sink.onLine(line);
  }
}

/** The longest k < delimiter.length such that `bytes` ends with `delimiter[0, k)`. */
export function endMatch(bytes: Buffer, delimiter: Buffer): number {
  for (let k = Math.min(bytes.length, delimiter.length - 1); k > 0; k--) {
    if (bytes.compare(delimiter, 0, k, bytes.length - k) === 0) return k;
  }
  return 0;
}
