/**
 * A DriverContext for source tests: it takes payloads of stream `dev` while
 * `decide` says `accepted`, and records what was taken, rejected and offered.
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { IngestOutcome } from '../../daemon/core/pipeline.js';
import type { DriverContext } from '../../drivers/driver.js';

export interface FakeContext {
  readonly ctx: DriverContext;
  /** Payloads taken (outcome `accepted`), in order. */
  readonly taken: Buffer[];
  readonly rejects: string[];
  /** Every ingest call, taken or not. */
  readonly offers: { count: number };
}

/** A DriverContext that takes payloads while `decide` says `accepted`. */
export function fakeContext(decide: () => IngestOutcome = () => 'accepted'): FakeContext {
  const taken: Buffer[] = [];
  const rejects: string[] = [];
  const offers = { count: 0 };
  const ctx: DriverContext = {
    log: pino({ level: 'silent' }),
    ingest: (stream, payload) => {
      offers.count++;
      assert.equal(stream, 'dev');
      const outcome = decide();
      if (outcome === 'accepted') taken.push(Buffer.from(payload));
      return outcome;
    },
    kept: () => Promise.resolve(true),
    reject: (reason) => rejects.push(reason),
    maxPayloadBytes: 256 * 1024,
  };
  return { ctx, taken, rejects, offers };
}

