/**
 * The consumer end of the daemon benches: a SpillwayConsumer that grants
 * MAX_CREDIT, acks every batch it gets as it gets it, grants the same
 * number again, and counts the records into an Arrivals.
 */
import { SpillwayConsumer, type WireRecord } from '../../daemon/client/consumer.js';
import type { Arrivals } from './arrivals.js';

/** The daemon's `consumers.maxCredit` must be at least this. */
export const MAX_CREDIT = 50_000;

export async function countingConsumer(url: string, arrivals: Arrivals): Promise<SpillwayConsumer> {
  const consumer = new SpillwayConsumer({ url, name: 'bench' });
  consumer.on('records', (records: WireRecord[]) => {
    consumer.ack(records.map((r) => r.seq));
    consumer.credit(records.length);
    arrivals.add(records.length);
  });
  await consumer.connect();
  consumer.credit(MAX_CREDIT);
  return consumer;
}
