/**
 * `lines`: every line of text is a frame (its bytes, without the delimiter
 * and a trailing `\r`). Blank lines are skipped. `latin1` lines are
 * re-encoded as UTF-8 so that consumers see text.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink } from './framer.js';
import { TextLineFramer } from './text-line-framer.js';

export type LinesFraming = Extract<FramingConfig, { type: 'lines' }>;

export class LinesFramer extends TextLineFramer {
  readonly #latin1: boolean;

  constructor(cfg: LinesFraming, sink: FrameSink) {
    super(Buffer.from(cfg.delimiter, 'utf8'), cfg.maxFrameBytes, cfg.encoding ?? 'utf8', sink);
    this.#latin1 = cfg.encoding === 'latin1';
  }

  protected text(bytes: Buffer): void {
    this.sink.onFrame(this.#latin1 ? Buffer.from(bytes.toString('latin1'), 'utf8') : bytes);
  }
}
