/**
 * `jsonl`: one JSON value per line. The frame is the line as received (not
 * re-serialised); a line that does not parse is rejected as `invalid_json`.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink, Framer } from './framer.js';
import { LineSplitter } from './line-splitter.js';
import { textLine } from './text.js';

export type JsonlFraming = Extract<FramingConfig, { type: 'jsonl' }>;

export class JsonlFramer implements Framer {
  readonly #splitter: LineSplitter;
  readonly #sink: FrameSink;

  constructor(cfg: JsonlFraming, sink: FrameSink) {
    this.#sink = sink;
    this.#splitter = new LineSplitter(Buffer.from('\n'), cfg.maxFrameBytes, {
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
    const text = textLine(line);
    if (text.kind === 'blank') return;
    if (text.kind === 'binary') return this.#sink.onReject('binary');
    if (!isJson(text.bytes.toString('utf8'))) return this.#sink.onReject('invalid_json');
    this.#sink.onFrame(text.bytes);
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch (err) {
    // SyntaxError: not JSON. RangeError: nested too deep for the stack; also not a record we can use.
    if (err instanceof SyntaxError || err instanceof RangeError) return false;
    throw err;
  }
}
