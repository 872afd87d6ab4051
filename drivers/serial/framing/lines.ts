/**
 * `lines`: every line of text is a frame (its bytes, without the delimiter
 * and a trailing `\r`). Blank lines are skipped. `latin1` lines are
 * re-encoded as UTF-8 so that consumers see text.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink, Framer } from './framer.js';
import { LineSplitter } from './line-splitter.js';
import { textLine, type TextEncoding } from './text.js';

export type LinesFraming = Extract<FramingConfig, { type: 'lines' }>;

export class LinesFramer implements Framer {
  readonly #splitter: LineSplitter;
  readonly #encoding: TextEncoding;
  readonly #sink: FrameSink;

  constructor(cfg: LinesFraming, sink: FrameSink) {
    this.#encoding = cfg.encoding ?? 'utf8';
    this.#sink = sink;
    this.#splitter = new LineSplitter(Buffer.from(cfg.delimiter, 'utf8'), cfg.maxFrameBytes, {
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

  reset(): number {
    return this.#splitter.reset();
  }

  #line(line: Buffer): void {
    const text = textLine(line, this.#encoding);
    if (text.kind === 'blank') return;
    if (text.kind === 'binary') return this.#sink.onReject('binary');
    const bytes = this.#encoding === 'latin1' ? Buffer.from(text.bytes.toString('latin1'), 'utf8') : text.bytes;
    this.#sink.onFrame(bytes);
  }
}
