/** A FrameSink that records what it gets, in order: for tests and tools. */
import type { FrameSink, RejectReason } from './framer.js';

export type Emitted = { readonly frame: Buffer } | { readonly reject: RejectReason };

export class RecordingSink implements FrameSink {
  readonly emitted: Emitted[] = [];

  readonly onFrame = (frame: Buffer): void => {
    this.emitted.push({ frame });
  };

  readonly onReject = (reason: RejectReason): void => {
    this.emitted.push({ reject: reason });
  };

  /** Frames as UTF-8 text. */
  get frames(): string[] {
    return this.emitted.flatMap((e) => ('frame' in e ? [e.frame.toString('utf8')] : []));
  }

  get rejects(): RejectReason[] {
    return this.emitted.flatMap((e) => ('reject' in e ? [e.reject] : []));
  }

  /** Everything as comparable strings: `frame:<hex>` or `reject:<reason>`. */
  get trace(): string[] {
    return this.emitted.map((e) => ('frame' in e ? `frame:${e.frame.toString('hex')}` : `reject:${e.reject}`));
  }
}
