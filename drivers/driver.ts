/**
 * The driver contract: what every source (MQTT now, serial next) offers the
 * daemon, and what the daemon hands it.
 */
import type { Logger } from 'pino';
import type { IngestOutcome } from '../daemon/core/pipeline.js';

export interface SourceHealth {
  readonly name: string;
  readonly up: boolean;
  readonly detail: string;
}

export interface DriverContext {
  readonly log: Logger;
  /**
   * Offers a payload to a stream; `priority` (the source's own setting)
   * applies if the stream is new. A `rejected` payload (too many streams, a
   * name too long) is already counted in spillway_input_rejected_total.
   */
  readonly ingest: (stream: string, payload: Buffer, priority?: number) => IngestOutcome;
  /**
   * Resolves once every payload this source's `ingest` accepted so far is
   * kept as the durability mode requires (durable: committed). Acknowledge
   * the producer (PUBACK) only after it resolves true; false means the
   * commit failed and the producer must not be told the record is safe.
   */
  readonly kept: () => Promise<boolean>;
  /** Counts input that never became a record (spillway_input_rejected_total). */
  readonly reject: (reason: string) => void;
  readonly maxPayloadBytes: number;
}

export interface Driver {
  readonly name: string;
  /** Starts reading; resolves once the source is up or has been given up on for now (it keeps retrying). */
  start(ctx: DriverContext): Promise<void>;
  /** Stops reading; resolves when no more input will arrive. */
  stop(): Promise<void>;
  health(): SourceHealth;
  /** For a source that listens (the embedded broker): its URL once started. */
  listenUrl?(): string | undefined;
  pause?(): void;
  resume?(): void;
}
