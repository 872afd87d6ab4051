/**
 * The streams a pipeline knows, across groups: per stream its spec, the
 * groups that select it (a bitmask, fixed per record at ingest), and its
 * lane in each group that has one. Stream-level counters that count a
 * record once (`ingested`) live here; the rest is per lane.
 *
 * Invariant: `lanes[i]`, when set, is the lane of the group with index i
 * and is in that group's `streams` map under the same name.
 */
import type { Group } from './group.js';
import { Stream, type StreamSpec } from './stream.js';

export class StreamEntry {
  readonly id: number;
  readonly name: string;
  spec: StreamSpec;
  sourcePriority: number | undefined;
  /** Bits (1 << group index) of the groups that select the stream now. */
  mask = 0;
  readonly lanes: Array<Stream | undefined> = [];
  /** Records taken from sources, once each (with several groups; else the lane counts). */
  ingested = 0;
  /** Age-clock ms of the last record taken from a source (idle streams are forgotten). */
  lastIngest = 0;
  readonly configured: boolean;

  constructor(id: number, name: string, spec: StreamSpec, sourcePriority: number | undefined, configured: boolean) {
    this.id = id;
    this.name = name;
    this.spec = spec;
    this.sourcePriority = sourcePriority;
    this.configured = configured;
  }

  /** The group's lane of this stream, made on first use. */
  lane(g: Group): Stream {
    let lane = this.lanes[g.index];
    if (lane === undefined) {
      lane = new Stream(this.id, this.name, this.spec, this.sourcePriority, g.bit);
      this.lanes[g.index] = lane;
      g.s.streams.set(this.name, lane);
    }
    return lane;
  }

  /** Recomputes which groups select the stream. */
  select(groups: Iterable<Group>): void {
    let mask = 0;
    for (const g of groups) if (g.spec.selects(this.name)) mask |= g.bit;
    this.mask = mask;
  }

  /** Nothing waits or is in flight in any lane. */
  get idle(): boolean {
    for (const lane of this.lanes) if (lane !== undefined && (lane.waiting > 0 || lane.inflight > 0)) return false;
    return true;
  }
}
