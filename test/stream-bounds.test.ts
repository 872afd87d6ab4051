/**
 * Stream state is bounded and configured streams keep their room, through a
 * real Mosquitto and through the embedded broker, the daemon as a child
 * process: one client's topic flood fills `limits.maxStreams`, then a stream
 * named under `streams` is still accepted from the same client (the refused
 * publishes are acknowledged and counted once, not resent); a topic longer than `limits.maxStreamNameBytes` is rejected and
 * counted, never a stream; idle streams are forgotten and their slots reused,
 * with their counts kept on /metrics.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acker } from './helpers/acker.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

describe('stream bounds', () => {
  for (const via of ['mosquitto', 'embedded broker'] as const) {
    it(`a topic flood cannot lock out a configured stream; over-long names are rejected and counted once (${via}, one client)`, async () => {
      const broker = via === 'mosquitto' ? await startMosquitto() : undefined;
      const sources = broker === undefined ? { embeddedBroker: { enabled: true, port: 0, subscriptions: [{ topic: 'f/#' }] } } : { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'f/#', qos: 1 as const }] }] };
      const daemon = await startDaemon(testConfig({ sources, limits: { maxStreams: 20, maxStreamNameBytes: 64 }, streams: { 'f/alarm': { priority: 0 } } }));
      try {
        // One client, QoS 1: every publish is PUBACKed, the refused ones too (they are counted, never
        // resent), so the configured stream's publish behind them arrives.
        const flood = Array.from({ length: 200 }, (_, i) => ({ topic: `f/t${i}`, payload: 'x' }));
        await publishAll(broker?.url ?? (daemon.brokerUrl as string), [...flood, { topic: `f/${'n'.repeat(80)}`, payload: 'long' }, { topic: 'f/alarm', payload: 'fire' }], 1);
        const m = await waitFor(async () => {
          const m = await daemon.metrics();
          const seen = m.sum('spillway_records_ingested_total') + m.sum('spillway_input_rejected_total');
          return seen === 202 ? m : undefined;
        }, 'all 202 publishes accounted for');
        assert.equal(m.sum('spillway_records_ingested_total'), 21, '20 flood streams and the configured one');
        assert.equal(m.sum('spillway_records_ingested_total', { stream: 'f/alarm' }), 1);
        assert.equal(m.sum('spillway_input_rejected_total', { reason: 'too_many_streams' }), 180);
        assert.equal(m.sum('spillway_input_rejected_total', { reason: 'stream_name_too_long' }), 1);
        assert.deepEqual(daemon.logs.filter((l) => l.event === 'publisher_refused'), [], 'the client was never disconnected');
      } finally {
        await daemon.stop();
        await broker?.stop();
      }
    });
  }

  it('forgets idle streams that hold nothing, frees their slots, and keeps their counts', async () => {
    const broker = await startMosquitto();
    const daemon = await startDaemon(
      testConfig({
        sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'i/#', qos: 1 }] }] },
        limits: { maxStreams: 5, streamIdleSeconds: 1 },
      }),
    );
    const got = new Set<string>();
    const c = await acker(daemon.consumerUrl, got, 100);
    try {
      await publishAll(broker.url, Array.from({ length: 5 }, (_, i) => ({ topic: `i/a${i}`, payload: `a${i}` })), 1);
      await waitFor(() => (got.size === 5 ? true : undefined), 'the first five delivered and acked');
      // The sweep runs every 5 s; after it the five idle streams are gone and five new ones fit.
      await waitFor(async () => ((await daemon.metrics()).sum('spillway_streams_forgotten_total') === 5 ? true : undefined), 'five streams forgotten', 15_000);
      await publishAll(broker.url, Array.from({ length: 5 }, (_, i) => ({ topic: `i/b${i}`, payload: `b${i}` })), 1);
      await waitFor(() => (got.size === 10 ? true : undefined), 'five new streams accepted and delivered');
      const m = await daemon.metrics();
      assert.equal(m.sum('spillway_input_rejected_total', { reason: 'too_many_streams' }), 0);
      assert.equal(m.sum('spillway_records_acked_total', { stream: '(forgotten)' }), 5, 'the forgotten streams keep their counts');
      assert.equal(m.sum('spillway_records_ingested_total'), 10, 'totals by stream still add up');
      assert.equal(m.sum('spillway_records_acked_total'), 10);
    } finally {
      await c.close();
      await daemon.stop();
      await broker.stop();
    }
  });
});
