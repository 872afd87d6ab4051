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
  queue: Stream[];
  head: number;
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
      while (level.head < level.queue.length) {
        const s = level.queue[level.head] as Stream;
        if (s.waiting > 0) return s;
        this.#popHead(level);
        s.scheduled = false;
      }
    }
    return undefined;
  }

  /** Moves a stream whose priority changed (config reload) to its new level now. */
  reprioritize(stream: Stream): void {
    if (!stream.scheduled) return;
    for (const level of this.#levels) {
      const i = level.queue.indexOf(stream, level.head);
      if (i < 0) continue;
      level.queue.splice(i, 1);
      if (level.head >= level.queue.length) {
        level.queue.length = 0;
        level.head = 0;
      }
      break;
    }
    stream.scheduled = false;
    if (stream.waiting > 0) this.enqueue(stream);
  }

  /** After taking one record from the head stream: move it behind its peers. */
  rotate(stream: Stream): void {
    const level = this.#level(stream.priority);
    if (level.queue[level.head] !== stream) return;
    this.#popHead(level);
    stream.scheduled = false;
    if (stream.waiting > 0) this.enqueue(stream);
  }

  /**
   * The stream whose ring holds the oldest record of the least important
   * level that has any: the first to leave memory (spilled or dropped) when
   * memory runs short. `block` streams of priority `spare` are passed over
   * (they keep their records for a newcomer as important: it waits instead).
   * O(streams of that level).
   */
  evictionCandidate(spare = -1): Stream | undefined {
    for (let i = this.#levels.length - 1; i >= 0; i--) {
      const level = this.#levels[i] as Level;
      const keepBlock = level.priority === spare;
      let best: Stream | undefined;
      let bestSeq = Infinity;
      for (let j = level.head; j < level.queue.length; j++) {
        const s = level.queue[j] as Stream;
        if (keepBlock && s.spec.whenFull === 'block') continue;
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

  #popHead(level: Level): void {
    level.queue[level.head] = undefined as unknown as Stream;
    level.head++;
    if (level.head > 1024 && level.head * 2 > level.queue.length) {
      level.queue = level.queue.slice(level.head);
      level.head = 0;
    }
    if (level.head === level.queue.length) {
      level.queue.length = 0;
      level.head = 0;
    }
  }

  #level(priority: number): Level {
    let i = 0;
    while (i < this.#levels.length && (this.#levels[i] as Level).priority < priority) i++;
    const found = this.#levels[i];
    if (found !== undefined && found.priority === priority) return found;
    const level: Level = { priority, queue: [], head: 0 };
    this.#levels.splice(i, 0, level);
    return level;
  }
}
