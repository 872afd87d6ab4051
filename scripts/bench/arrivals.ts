/**
 * Counts what arrives at the receiving end of an end-to-end bench run (a
 * bare subscriber or reader, or a SpillwayConsumer) and notes when the last
 * of it came, so rate = count / (start -> last arrival).
 */
import { now } from './stats.js';

/** A run ends early when nothing arrives for this long (QoS 0 may lose messages). */
const IDLE_MS = 5_000;

export class Arrivals {
  count = 0;
  lastAt = 0;
  #target = 0;
  #done: (() => void) | undefined;

  expect(target: number): Promise<void> {
    this.count = 0;
    this.#target = target;
    return new Promise((resolve) => (this.#done = resolve));
  }

  /** The count the current run waits for. */
  target(): number {
    return this.#target;
  }

  add(n: number): void {
    this.count += n;
    this.lastAt = now();
    if (this.count >= this.#target) this.#done?.();
  }

  /** Resolves once the target arrived, or nothing arrived for IDLE_MS. */
  async wait(all: Promise<void>): Promise<void> {
    for (;;) {
      const seen = this.count;
      const idle = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(r, IDLE_MS, true))]);
      if (!idle || this.count === seen) return;
    }
  }

  /** Arrivals per second since `t0` (a `now()`), up to the last arrival. */
  rateSince(t0: number): number {
    return this.count === 0 ? 0 : this.count / ((this.lastAt - t0) / 1000);
  }
}
