/**
 * The baseline of `npm run bench:peers`: a bare mqtt.js forwarder, what one
 * would write by hand. Subscribes QoS 1 to `TOPIC` on broker A and publishes
 * every message QoS 1, same topic and payload, to broker B, with at most
 * WINDOW publishes awaiting their PUBACK from B. While the window is full it
 * holds back the callback of mqtt.js's `handleMessage`, so it reads no more
 * from A (A then keeps the messages: its own in-flight limit). It acks A
 * before B acked (no at-least-once across a crash of the forwarder), and
 * leans on mqtt.js's offline queue and reconnect (every RECONNECT_MS) while B
 * is away: the simple thing, not a durable one.
 *
 *   node bare-forwarder.js URL_A URL_B TOPIC
 *
 * Prints `ready` on stdout once subscribed.
 */
import { fileURLToPath } from 'node:url';
import mqtt, { type IPublishPacket } from 'mqtt';

export const BARE_WINDOW = 1_000;
const RECONNECT_MS = 100;

async function main(urlA: string, urlB: string, topic: string): Promise<void> {
  const out = await mqtt.connectAsync(urlB, { clientId: `bare-fwd-out-${process.pid}`, clean: true, reconnectPeriod: RECONNECT_MS });
  let unacked = 0;
  let held: (() => void) | undefined;
  const onAck = () => {
    unacked--;
    if (held !== undefined && unacked < BARE_WINDOW) {
      const go = held;
      held = undefined;
      go();
    }
  };
  const handleMessage = (packet: IPublishPacket, done: (err?: Error) => void) => {
    unacked++;
    out.publish(packet.topic, packet.payload as Buffer, { qos: 1 }, onAck);
    if (unacked < BARE_WINDOW) done();
    else held = () => done();
  };
  const inc = mqtt.connect(urlA, { clientId: `bare-fwd-in-${process.pid}`, clean: true, reconnectPeriod: RECONNECT_MS });
  inc.handleMessage = handleMessage;
  await new Promise((resolve) => inc.once('connect', resolve));
  await inc.subscribeAsync(topic, { qos: 1 });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    inc.end(true);
    out.end(true);
    process.exit(0);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [urlA, urlB, topic] = process.argv.slice(2);
  if (urlA === undefined || urlB === undefined || topic === undefined) throw new Error('usage: bare-forwarder.js URL_A URL_B TOPIC');
  await main(urlA, urlB, topic);
}
