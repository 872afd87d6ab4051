/**
 * A damaged spool through the daemon process: records published through a
 * real Mosquitto spill to the spool (no consumer, a small memory budget), a
 * SIGTERM keeps the rest there, the file is damaged (garbage over a page of
 * records in the middle), and the restarted daemon salvages what it can,
 * counts the rest as dropped (`corrupt`), tells a consumer with a loss
 * notice, delivers exactly the salvaged records, and /metrics balances to
 * the record.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SpillwayConsumer, type LossNotice, type WireRecord } from '../daemon/client/consumer.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { startMosquitto } from './helpers/mosquitto.js';
import { publishAll } from './helpers/publisher.js';
import { waitFor } from './helpers/wait.js';

const N = 2_000;

describe('a damaged spool, through the daemon', () => {
  it('salvages what it can read, counts the rest as corrupt, and conservation stays exact', async () => {
    const broker = await startMosquitto();
    const config = testConfig({
      sources: { mqtt: [{ url: broker.url, subscriptions: [{ topic: 'dmg/#', qos: 1, stream: 'dmg' }] }] },
      limits: { memoryBudgetBytes: 64 * 1024 },
    });
    const first = await startDaemon(config);
    const dataDir = first.dataDir;
    let second: Awaited<ReturnType<typeof startDaemon>> | undefined;
    let consumer: SpillwayConsumer | undefined;
    try {
      const payload = (i: number) => `r${i}:`.padEnd(120, 'x');
      await publishAll(broker.url, Array.from({ length: N }, (_, i) => ({ topic: 'dmg/a', payload: payload(i) })), 1);
      await waitFor(async () => ((await first.metrics()).sum('spillway_records_ingested_total') === N ? true : undefined), `all ${N} ingested`);
      assert.equal(await first.stop('SIGTERM'), 0);

      // Garbage over a leaf page of the records table, in the middle of the file.
      const file = join(dataDir, 'spool.db');
      const db = new Database(file, { readonly: true });
      const leaves = (db.prepare("SELECT pageno FROM dbstat WHERE name = 'records' AND pagetype = 'leaf' ORDER BY pageno").all() as Array<{ pageno: number }>).map((r) => r.pageno);
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.close();
      assert.ok(leaves.length > 4, `records on ${leaves.length} pages`);
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, ((leaves[Math.floor(leaves.length / 2)] as number) - 1) * pageSize);
      closeSync(fd);

      second = await startDaemon(config, { dataDir });
      const quarantine = await second.waitForLog((l) => l['event'] === 'spool_quarantined', 'the quarantine log line');
      const salvaged = quarantine['salvaged'] as number;
      const lost = quarantine['lost'] as number;
      assert.equal(quarantine['owedFrom'], 'clean-stop');
      assert.equal(salvaged + lost, N, 'every owed record is salvaged or counted lost');
      assert.ok(lost > 0 && salvaged > 0, `a page lost (${lost}), the rest salvaged (${salvaged})`);

      const got = new Map<number, WireRecord>();
      const losses: LossNotice[] = [];
      consumer = new SpillwayConsumer({ url: second.consumerUrl, name: 'after-damage' });
      consumer.on('records', (records: WireRecord[]) => {
        for (const r of records) got.set(r.seq, r);
        consumer?.ack(records.map((r) => r.seq));
        consumer?.credit(records.length);
      });
      consumer.on('loss', (n: LossNotice) => losses.push(n));
      await consumer.connect();
      consumer.credit(500);
      await waitFor(() => (got.size === salvaged ? true : undefined), `the ${salvaged} salvaged records delivered`);
      for (const r of got.values()) assert.equal(r.data, payload(Number(r.data.slice(1, r.data.indexOf(':')))), 'payloads whole');
      const m = await waitFor(async () => {
        const m = await second?.metrics();
        return m !== undefined && m.sum('spillway_records_acked_total') === salvaged && m.sum('spillway_inflight_records') === 0 ? m : undefined;
      }, 'every salvaged record acked');
      assert.equal(m.sum('spillway_records_recovered_total'), N);
      assert.equal(m.sum('spillway_records_dropped_total', { reason: 'corrupt' }), lost);
      assert.equal(m.sum('spillway_records_dropped_total'), lost);
      assert.equal(m.imbalance(), 0, 'recovered + ingested = acked + dropped + buffered + spooled + inflight');
      await waitFor(() => (losses.some((n) => n.reason === 'corrupt' && n.count === lost) ? true : undefined), 'a loss notice for the corrupt records');
    } finally {
      await consumer?.close();
      await second?.stop();
      await broker.stop();
    }
  });
});
