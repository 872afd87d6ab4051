/**
 * The subscriber at the far end of `npm run bench:peers`: subscribed QoS 1
 * to everything on broker B with a persistent session (B keeps what arrives
 * for it while it reconnects after a restart of B), reconnecting every
 * RECONNECT_MS. Counts arrivals (Arrivals) and, for payloads stamped by
 * paced-publisher.ts, keeps each message's send and arrival time.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { Arrivals } from './arrivals.js';
import { sentAt } from './paced-publisher.js';

const RECONNECT_MS = 20;
/** A stamp further back than this is not one (the bulk publisher's payload is text). */
const MAX_AGE_NS = 600e9;

export class Sink extends Arrivals {
  readonly #client: MqttClient;
  /** Send and arrival times (ns, CLOCK_MONOTONIC) of the stamped messages since `expect`. */
  #sent: number[] = [];
  #arrived: number[] = [];

  private constructor(client: MqttClient) {
    super();
    this.#client = client;
    client.on('message', (_topic, payload) => {
      const at = process.hrtime.bigint();
      if (payload.length >= 8) {
        const sent = sentAt(payload);
        if (sent <= at && at - sent < MAX_AGE_NS) {
          this.#sent.push(Number(sent));
          this.#arrived.push(Number(at));
        }
      }
      this.add(1);
    });
    client.on('error', () => undefined); // B going away in the outage phase: mqtt.js reconnects
  }

  static async connect(url: string): Promise<Sink> {
    const client = await mqtt.connectAsync(url, { clientId: `spillway-bench-peers-sink`, clean: false, reconnectPeriod: RECONNECT_MS });
    await client.subscribeAsync('#', { qos: 1 });
    return new Sink(client);
  }

  override expect(target: number): Promise<void> {
    this.#sent = [];
    this.#arrived = [];
    return super.expect(target);
  }

  /** Latency quantiles of the stamped messages since `expect`, in ms. */
  latencyPercentiles(qs: readonly number[]): number[] {
    const lat = this.#arrived.map((a, i) => (a - (this.#sent[i] as number)) / 1e6).sort((x, y) => x - y);
    return qs.map((q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? NaN);
  }

  /**
   * For a run with an outage of B that ended at `back`: messages lost (distinct stamps
   * short of the target), the first delivery after `back`, when the last message sent before
   * `back` arrived (both in ms after `back`), and the rate the backlog drained at.
   */
  outageFigures(back: bigint): { lost: number; firstMs: number; lastBacklogMs: number; drainRate: number } {
    const b = Number(back);
    const distinct = new Set(this.#sent).size;
    let first = Infinity;
    let lastBacklog = b;
    let backlog = 0;
    this.#arrived.forEach((at, i) => {
      if (at <= b) return;
      first = Math.min(first, at);
      if ((this.#sent[i] as number) < b) {
        backlog++;
        lastBacklog = Math.max(lastBacklog, at);
      }
    });
    const drainS = (lastBacklog - first) / 1e9;
    return { lost: this.target() - distinct, firstMs: (first - b) / 1e6, lastBacklogMs: (lastBacklog - b) / 1e6, drainRate: drainS > 0 ? backlog / drainS : 0 };
  }

  close(): Promise<void> {
    return this.#client.endAsync(true);
  }
}
