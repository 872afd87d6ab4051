/** A consumer that acks everything it gets and keeps its credit topped up, collecting payloads. */
import { SpillwayConsumer, type WireRecord } from '../../daemon/client/consumer.js';

export async function acker(url: string, got: Set<string>, credit = 200): Promise<SpillwayConsumer> {
  const c = new SpillwayConsumer({ url, name: 'acker' });
  c.on('records', (records: WireRecord[]) => {
    for (const r of records) got.add(r.data);
    c.ack(records.map((r) => r.seq));
    c.credit(records.length);
  });
  await c.connect();
  c.credit(credit);
  return c;
}
