/**
 * What every line-based framer shares: a bounded splitter (an over-long run
 * is discarded to the next delimiter and rejected once as `oversized`),
 * blank lines skipped, lines that are not text in `encoding` rejected as
 * `binary`. A subclass says what a line of text becomes (`text`).
 */
import type { FrameSink, Framer } from './framer.js';
import { LineSplitter } from './line-splitter.js';
import { textLine, type TextEncoding } from './text.js';

export abstract class TextLineFramer implements Framer {
  readonly #splitter: LineSplitter;
  readonly #encoding: TextEncoding;
  protected readonly sink: FrameSink;

  constructor(delimiter: Buffer, maxFrameBytes: number, encoding: TextEncoding, sink: FrameSink) {
    this.sink = sink;
    this.#encoding = encoding;
    this.#splitter = new LineSplitter(delimiter, maxFrameBytes, {
      onLine: (line) => this.#line(line),
      onOversized: () => sink.onReject('oversized'),
    });
  }

  get bufferedBytes(): number {
    return this.#splitter.bufferedBytes;
  }

  push(chunk: Buffer): void {
    this.#splitter.push(chunk);
  }

  /** Drops the unfinished line; returns its bytes. */
  reset(): number {
    return this.#splitter.reset();
  }

  /** One line of text (without its delimiter and a trailing `\r`). */
  protected abstract text(bytes: Buffer): void;

  #line(line: Buffer): void {
    const text = textLine(line, this.#encoding);
    if (text.kind === 'blank') return;
    if (text.kind === 'binary') return this.sink.onReject('binary');
    this.text(text.bytes);
  }
}
