/**
 * What every framer offers: bytes in (`push`), frames and rejects out through
 * a sink. Framers are pure: no I/O, no timers, no clock.
 *
 * Bound: a framer never holds more than `maxFrameBytes` bytes of input
 * (`bufferedBytes`), whatever it is fed.
 */

/** Why input never became a frame. Stable strings: they label a counter. */
export const REJECT_REASONS = ['oversized', 'invalid_json', 'bad_checksum', 'malformed', 'binary'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface FrameSink {
  /** A complete frame; the framer does not touch it again. */
  readonly onFrame: (frame: Buffer) => void;
  readonly onReject: (reason: RejectReason) => void;
}

export interface Framer {
  push(chunk: Buffer): void;
  /**
   * Drops a partial frame (the port closed mid-frame) and returns how many
   * bytes it held. What a framer learned (a CSV header) survives.
   */
  reset(): number;
  /** Input bytes held, waiting for the rest of a frame: at most `maxFrameBytes`. */
  readonly bufferedBytes: number;
}
