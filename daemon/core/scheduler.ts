/**
 * Which stream sends next: the most important priority level with waiting
 * records first (docs/PROTOCOL.md, guarantee 5, strict), and round robin
 * between the streams of one level so a busy stream cannot starve a quiet
 * one of the same priority.
 *
 * Invariant: a stream is in exactly one level queue iff `stream.scheduled`,
 * the level of its priority (`reprioritize` moves it at once on reload); a
 * scheduled stream may have run empty since (TTL, eviction: it is dropped
 * lazily when it reaches the head).
 */
import type { Stream } from './stream.js';

interface Level {
  readonly priority: number;
  /** Round robin: the head sends next. At most one entry per stream (maxStreams), so `shift` stays cheap. */
  readonly queue: Stream[];
}

export class Scheduler {
  /** Sorted by priority, most important (lowest number) first. */
  readonly #levels: Level[] = [];

  /** Marks a stream as having records to send. */
  enqueue(stream: Stream): void {
    if (stream.scheduled) return;
    stream.scheduled = true;
    const level = this.#level(stream.priority);
    level.queue.push(stream);
  }

  /** The stream whose record goes next, or undefined when nothing waits. */
  peek(): Stream | undefined {
    for (const level of this.#levels) {
      for (let s = level.queue[0]; s !== undefined; s = level.queue[0]) {
        if (s.waiting > 0) return s;
        level.queue.shift();
        s.scheduled = false;
      }
    }
    return undefined;
  }

  /** Moves a stream whose priority changed (config reload) to its new level now. */
  reprioritize(stream: Stream): void {
    if (!stream.scheduled) return;
    for (const level of this.#levels) {
      const i = level.queue.indexOf(stream);
      if (i < 0) continue;
      level.queue.splice(i, 1);
      break;
    }
    stream.scheduled = false;
    if (stream.waiting > 0) this.enqueue(stream);
  }

  /** After taking one record from the head stream: move it behind its peers. */
  rotate(stream: Stream): void {
    const level = this.#level(stream.priority);
    if (level.queue[0] !== stream) return;
    level.queue.shift();
    stream.scheduled = false;
    if (stream.waiting > 0) this.enqueue(stream);
  }

  /**
   * The stream whose ring holds the oldest record of the least important
   * level that has any: the first to leave memory (spilled or dropped) when
   * memory runs short. O(streams of that level).
   */
  evictionCandidate(): Stream | undefined {
    for (let i = this.#levels.length - 1; i >= 0; i--) {
      const level = this.#levels[i] as Level;
      let best: Stream | undefined;
      let bestSeq = Infinity;
      for (const s of level.queue) {
        const oldest = s.ring.peek();
        if (oldest !== undefined && oldest.seq < bestSeq) {
          best = s;
          bestSeq = oldest.seq;
        }
      }
      if (best !== undefined) return best;
    }
    return undefined;
  }

  #level(priority: number): Level {
    let i = 0;
    while (i < this.#levels.length && (this.#levels[i] as Level).priority < priority) i++;
    const found = this.#levels[i];
    if (found !== undefined && found.priority === priority) return found;
    const level: Level = { priority, queue: [] };
    this.#levels.splice(i, 0, level);
    return level;
  }
}
