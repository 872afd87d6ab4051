/**
 * `jsonl`: one JSON value per line. The frame is the line as received (not
 * re-serialised); a line that does not parse is rejected as `invalid_json`.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink } from './framer.js';
import { TextLineFramer } from './text-line-framer.js';

export type JsonlFraming = Extract<FramingConfig, { type: 'jsonl' }>;

export class JsonlFramer extends TextLineFramer {
  constructor(cfg: JsonlFraming, sink: FrameSink) {
    super(Buffer.from('\n'), cfg.maxFrameBytes, 'utf8', sink);
  }

  protected text(bytes: Buffer): void {
    if (!isJson(bytes.toString('utf8'))) return this.sink.onReject('invalid_json');
    this.sink.onFrame(bytes);
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
