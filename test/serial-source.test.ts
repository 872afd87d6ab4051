/**
 * The serial source on real pseudo-terminals (socat), beyond the driver
 * contract that runs on a pty and on the mock binding
 * (test/serial-contract.test.ts: lines, bounded garbage, block, pause,
 * unplug and replug, stop): the other framings, megabytes of garbage at
 * speed, a device missing at start, and block backpressure reaching the
 * writer through the kernel. The source runs in-process against a fake
 * DriverContext.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import type { IngestOutcome } from '../daemon/core/pipeline.js';
import { serialPortSchema } from '../drivers/serial/config.js';
import { SerialSource, createSerialSource } from '../drivers/serial/source.js';
import { closePeer, openPeer, ptyLinks, removePtyDir, startSocat, writeAll, type Socat } from './helpers/pty.js';
import { fakeContext } from './helpers/fake-driver-context.js';
import { waitFor } from './helpers/wait.js';

const text = (bufs: readonly Buffer[]) => bufs.map((b) => b.toString('utf8'));

/** Everything a test started, stopped after it whatever happened. */
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function rig(port: Record<string, unknown>, decide?: () => IngestOutcome) {
  const links = await ptyLinks();
  cleanup.push(() => removePtyDir(links));
  let socat = await startSocat(links);
  cleanup.push(() => socat.stop());
  const source = createSerialSource(serialPortSchema.parse({ name: 'dev', path: links.device, ...port }));
  const fake = fakeContext(decide);
  await source.start(fake.ctx);
  cleanup.push(() => source.stop());
  assert.equal(source.health().up, true, source.health().detail);
  const peer = await openPeer(links.peer);
  cleanup.push(() => closePeer(peer));
  return {
    links,
    source,
    peer,
    ...fake,
    get socat(): Socat {
      return socat;
    },
    async replug(): Promise<void> {
      socat = await startSocat(links);
    },
  };
}

describe('serial source on a pty', () => {
  it('jsonl: valid lines pass as sent, others are invalid_json', async () => {
    const r = await rig({ framing: { type: 'jsonl' } });
    await writeAll(r.peer, '{"t":21.5}\n{"t":\n[1,2]\n');
    await waitFor(() => r.taken.length === 2, 'two JSON lines');
    assert.deepEqual(text(r.taken), ['{"t":21.5}', '[1,2]']);
    assert.deepEqual(r.rejects, ['invalid_json']);
  });

  it('csv: rows become JSON objects named by the header', async () => {
    const r = await rig({ framing: { type: 'csv' } });
    await writeAll(r.peer, 'id,temp\r\na1,21.5\r\nbroken\r\na2,-3\r\n');
    await waitFor(() => r.taken.length === 2, 'two rows');
    assert.deepEqual(
      r.taken.map((b) => JSON.parse(b.toString()) as unknown),
      [
        { id: 'a1', temp: 21.5 },
        { id: 'a2', temp: -3 },
      ],
    );
    assert.deepEqual(r.rejects, ['malformed']);
  });

  it('nmea: checksummed sentences pass, bad sums and junk are rejected', async () => {
    const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
    const r = await rig({ baudRate: 4800, framing: { type: 'nmea' } });
    await writeAll(r.peer, `${gga}\r\n${gga.slice(0, -2)}00\r\nnoise\r\n${gga}\r\n`);
    await waitFor(() => r.taken.length === 2, 'two sentences');
    assert.deepEqual(text(r.taken), [gga, gga]);
    assert.deepEqual(r.rejects, ['bad_checksum', 'malformed']);
  });

  it('fixed: binary frames, every byte value intact', async () => {
    const r = await rig({ framing: { type: 'fixed', frameBytes: 256 } });
    const frame = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await writeAll(r.peer, Buffer.concat([frame, frame, frame.subarray(0, 100)]));
    await waitFor(() => r.taken.length === 2, 'two frames');
    assert.deepEqual(r.taken, [frame, frame]);
    await waitFor(() => r.source.bufferedBytes === 100, 'the partial frame held');
  });

  it('several MB of garbage without a delimiter: memory stays bounded, one oversized reject', async () => {
    const maxFrameBytes = 4096;
    const r = await rig({ baudRate: 921600, framing: { type: 'lines', maxFrameBytes } });
    // Sampled every ms while 6 MiB go through; the framer property tests check it after every push.
    let maxBuffered = 0;
    const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, r.source.bufferedBytes)), 1);
    cleanup.push(async () => clearInterval(sampler));
    const block = Buffer.from(randomBytes(64 * 1024).map((b) => (b === 0x0a ? 0x20 : b)));
    const total = 6 * 1024 * 1024;
    for (let sent = 0; sent < total; sent += block.length) await writeAll(r.peer, block);
    await writeAll(r.peer, '\nafter\n');
    await waitFor(() => r.taken.length === 1, 'the line after the garbage', 30_000);
    clearInterval(sampler);
    assert.deepEqual(text(r.taken), ['after']);
    assert.deepEqual(r.rejects, ['oversized'], 'one reject for the whole run');
    assert.ok(maxBuffered <= maxFrameBytes, `buffered ${maxBuffered} > ${maxFrameBytes}`);
    assert.equal(r.source.bufferedBytes, 0);
  });

  it('a missing device does not fail start; the source opens it when it appears', async () => {
    const links = await ptyLinks();
    cleanup.push(() => removePtyDir(links));
    const source = new SerialSource(serialPortSchema.parse({ name: 'dev', path: links.device, reconnect: { initialMs: 20, maxMs: 100 } }));
    const fake = fakeContext();
    await source.start(fake.ctx);
    cleanup.push(() => source.stop());
    assert.equal(source.health().up, false);
    assert.match(source.health().detail, /cannot open .*device.*retrying in \d+ ms/);
    const socat = await startSocat(links);
    cleanup.push(() => socat.stop());
    await waitFor(() => source.health().up, 'the source to open the device');
    const peer = await openPeer(links.peer);
    cleanup.push(() => closePeer(peer));
    await writeAll(peer, 'hello\n');
    await waitFor(() => fake.taken.length === 1, 'a line');
    assert.deepEqual(text(fake.taken), ['hello']);
  });

  it('block: a refused frame pauses the port; resume delivers everything, in order', async () => {
    const N = 50;
    let open = true;
    let taken = 0;
    const r = await rig({ baudRate: 921600 }, () => {
      if (!open) return 'blocked';
      if (++taken === N) open = false; // the ring is full after N records
      return 'accepted';
    });
    const lines = Array.from({ length: 100_000 }, (_, i) => `line-${String(i).padStart(6, '0')}`);
    const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    let written = 0;
    const writes: Array<Promise<void>> = [];
    for (let pos = 0; pos < bytes.length; pos += 4096) {
      const chunk = bytes.subarray(pos, pos + 4096);
      writes.push(writeAll(r.peer, chunk).then(() => void (written += chunk.length)));
    }

    await waitFor(() => r.source.heldFrames > 0, 'the source to hold a refused frame');
    assert.equal(r.source.health().up, true);
    assert.match(r.source.health().detail, /blocked/);
    // A stall is the absence of progress, so it takes a window to see: the
    // writer's progress must stop (every buffer between it and the paused
    // port full) well before all of it is written.
    await steady(() => written, 'the writer to stall', 300);
    assert.ok(written < bytes.length, `the writer stalled (${written} of ${bytes.length} bytes written)`);
    assert.equal(r.taken.length, N, 'nothing taken while blocked');
    assert.equal(r.offers.count, N + 1, 'the refused frame was offered once; no retry loop');

    open = true;
    r.source.resume();
    await waitFor(() => r.taken.length === lines.length, `all ${lines.length} lines (have ${r.taken.length})`, 60_000);
    await Promise.all(writes);
    assert.equal(written, bytes.length);
    assert.deepEqual(text(r.taken), lines, 'nothing lost, in order');
    assert.equal(r.source.heldFrames, 0);
    assert.equal(r.source.health().detail, 'open');
    assert.deepEqual(r.rejects, []);
  });
});

/**
 * Resolves once `probe` has kept the same value for `quietMs` (polling, with
 * a deadline): how a test observes that something stopped moving.
 */
async function steady(probe: () => number, what: string, quietMs: number, timeoutMs = 10_000): Promise<number> {
  let last = probe();
  let since = Date.now();
  return waitFor(
    () => {
      const v = probe();
      if (v !== last) {
        last = v;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= quietMs ? { v } : undefined;
    },
    what,
    timeoutMs,
  ).then((x) => x.v);
}
