/**
 * What `Pipeline.streams()` shows of a stream read by several groups: its
 * lanes' counters summed (a drop counts once per group that had the
 * record), `ingested` once per record, and the fullest lane's tiers.
 */
import type { StreamView } from './pipeline-types.js';
import { DROP_REASONS } from './record.js';
import type { StreamEntry } from './stream-registry.js';
import { zeroDrops } from './stream.js';

export function streamView(e: StreamEntry): StreamView {
  const dropped = zeroDrops();
  let acked = 0;
  let redelivered = 0;
  let spilled = 0;
  let buffered = 0;
  let bufferedBytes = 0;
  let spooled = 0;
  let spooledBytes = 0;
  let ringLength = 0;
  let ringBytes = 0;
  for (const lane of e.lanes) {
    if (lane === undefined) continue;
    acked += lane.acked;
    redelivered += lane.redelivered;
    spilled = Math.max(spilled, lane.spilled);
    for (const r of DROP_REASONS) dropped[r] += lane.dropped[r];
    buffered = Math.max(buffered, lane.buffered);
    bufferedBytes = Math.max(bufferedBytes, lane.bufferedBytes);
    spooled = Math.max(spooled, lane.spooled);
    spooledBytes = Math.max(spooledBytes, lane.spooledBytes);
    ringLength = Math.max(ringLength, lane.ring.length);
    ringBytes = Math.max(ringBytes, lane.ring.bytes);
  }
  return {
    id: e.id,
    name: e.name,
    priority: e.spec.priority,
    spec: e.spec,
    ring: { length: ringLength, bytes: ringBytes, capacityRecords: e.spec.capacityRecords, capacityBytes: e.spec.capacityBytes },
    buffered,
    bufferedBytes,
    spooled,
    spooledBytes,
    ingested: e.ingested,
    acked,
    redelivered,
    spilled,
    dropped,
  };
}
