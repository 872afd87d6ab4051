/**
 * The serial driver contract: one suite for the serial source on any
 * hardware a rig provides (node-serialport's mock binding, a real socat
 * pty). A rig is the cable and the device: it sends the device's bytes,
 * unplugs it and plugs it back; every expectation is here.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { IngestOutcome } from '../../daemon/core/pipeline.js';
import { serialPortSchema } from '../../drivers/serial/config.js';
import { createSerialSource, type SerialSource, type SerialSourceDeps } from '../../drivers/serial/source.js';
import { fakeContext } from './fake-driver-context.js';
import { waitFor } from './wait.js';

export interface SerialRig {
  /** The device path the source opens. */
  readonly path: string;
  /** What the source needs to reach this hardware. */
  readonly deps: SerialSourceDeps;
  /** Connects the far end (after the source opened the device). */
  connect(): Promise<void>;
  /** Bytes from the device, as a sensor sends them; resolves once they are on their way. */
  send(data: Buffer | string): Promise<void>;
  /** The adapter is pulled out: the open port fails and the device is gone. */
  unplug(): Promise<void>;
  /** The adapter is back at the same path. */
  replug(): Promise<void>;
  close(): Promise<void>;
}

export type MakeRig = () => Promise<SerialRig>;

interface Under {
  readonly rig: SerialRig;
  readonly source: SerialSource;
  /** Payloads taken (outcome `accepted`), as text, in order. */
  readonly taken: string[];
  readonly rejects: string[];
  /** Every ingest call, taken or not. */
  readonly offers: { count: number };
}

export function serialDriverContract(name: string, makeRig: MakeRig): void {
  describe(`serial driver contract: ${name}`, () => {
    const cleanup: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const fn of cleanup.splice(0).reverse()) await fn();
    });

    async function start(port: Record<string, unknown>, decide: () => IngestOutcome = () => 'accepted'): Promise<Under> {
      const rig = await makeRig();
      cleanup.push(() => rig.close());
      const fake = fakeContext(decide);
      const { ctx, rejects, offers } = fake;
      const source = createSerialSource(serialPortSchema.parse({ name: 'dev', path: rig.path, reconnect: { initialMs: 20, maxMs: 200 }, ...port }), rig.deps);
      await source.start(ctx);
      cleanup.push(() => source.stop());
      assert.equal(source.health().up, true, source.health().detail);
      await rig.connect();
      return {
        rig,
        source,
        get taken() {
          return fake.taken.map((b) => b.toString('utf8'));
        },
        rejects,
        offers,
      };
    }

    it('lines: cut at each newline, \\r stripped, a line split across reads joined, binary and over-long lines rejected', async () => {
      const u = await start({ framing: { type: 'lines', maxFrameBytes: 32 } });
      await u.rig.send('t=21.5\r\nh=4');
      await u.rig.send('0\n');
      await u.rig.send(Buffer.concat([Buffer.from([0x61, 0x00, 0x0a]), Buffer.from(`${'x'.repeat(100)}\nend\n`)]));
      await waitFor(() => u.taken.length === 3, 'three lines');
      assert.deepEqual(u.taken, ['t=21.5', 'h=40', 'end']);
      assert.deepEqual(u.rejects, ['binary', 'oversized']);
      assert.equal(u.source.bufferedBytes, 0);
    });

    it('garbage without a delimiter: the framer never holds more than maxFrameBytes, one oversized reject, the next line goes through', async () => {
      const maxFrameBytes = 1024;
      const u = await start({ framing: { type: 'lines', maxFrameBytes } });
      let maxBuffered = 0;
      const sample = () => (maxBuffered = Math.max(maxBuffered, u.source.bufferedBytes));
      const sampler = setInterval(sample, 1);
      cleanup.push(async () => clearInterval(sampler));
      const block = Buffer.alloc(4096, 0x5a);
      for (let i = 0; i < 64; i++) {
        await u.rig.send(block);
        sample();
      }
      await u.rig.send('\nafter\n');
      await waitFor(() => u.taken.length === 1, 'the line after 256 KiB of garbage', 20_000);
      clearInterval(sampler);
      assert.deepEqual(u.taken, ['after']);
      assert.deepEqual(u.rejects, ['oversized'], 'one reject for the whole run');
      assert.ok(maxBuffered <= maxFrameBytes, `buffered ${maxBuffered} > ${maxFrameBytes}`);
    });

    it('block: a refused frame pauses the port, nothing more is read while blocked, resume() delivers everything in order', async () => {
      let open = true;
      const u = await start({}, () => (open ? 'accepted' : 'blocked'));
      await u.rig.send('a\nb\n');
      await waitFor(() => u.taken.length === 2, 'two lines');
      open = false;
      await u.rig.send('c\nd\ne\n');
      await waitFor(() => u.source.heldFrames === 3, 'three frames held');
      assert.equal(u.offers.count, 3, 'the refused frame was offered once, the two behind it held without an offer');
      assert.match(u.source.health().detail, /blocked: 3 frames held/);
      await u.rig.send('f\n');
      await steady(() => u.offers.count + u.source.heldFrames + u.source.bufferedBytes, 'nothing read while blocked', 300);
      assert.equal(u.source.heldFrames, 3, 'the port is paused: the line sent while blocked is not read');
      u.source.resume();
      assert.equal(u.source.heldFrames, 3, 'still refused: still held');
      open = true;
      u.source.resume();
      await waitFor(() => u.taken.length === 6, 'all six lines');
      assert.deepEqual(u.taken, ['a', 'b', 'c', 'd', 'e', 'f']);
      assert.equal(u.source.health().detail, 'open');
      assert.deepEqual(u.rejects, []);
    });

    it('pause() stops reading until resume()', async () => {
      const u = await start({});
      u.source.pause();
      assert.equal(u.source.health().detail, 'open; paused');
      await u.rig.send('x\n');
      await steady(() => u.offers.count + u.source.bufferedBytes, 'nothing read while paused', 300);
      assert.equal(u.offers.count, 0);
      u.source.resume();
      await waitFor(() => u.taken.length === 1, 'the line after resume');
      assert.deepEqual(u.taken, ['x']);
    });

    it('unplug: health goes down with the reason, a partial line is one truncated reject; replug: it reopens by itself and frames flow', async () => {
      const u = await start({});
      await u.rig.send('before\npart');
      await waitFor(() => u.taken.length === 1 && u.source.bufferedBytes === 4, 'a line, and a partial one held');
      await u.rig.unplug();
      await waitFor(() => !u.source.health().up, 'health down', 5_000);
      await waitFor(() => /cannot open .*retrying in \d+ ms/.test(u.source.health().detail), 'the source retrying the missing device', 5_000);
      assert.deepEqual(u.rejects, ['truncated']);
      assert.equal(u.source.bufferedBytes, 0);
      await u.rig.replug();
      await waitFor(() => u.source.health().up, 'the source to reopen the device', 10_000);
      assert.equal(u.source.health().detail, 'open');
      await u.rig.connect();
      await u.rig.send('after\n');
      await waitFor(() => u.taken.length === 2, 'a line after the replug');
      assert.deepEqual(u.taken, ['before', 'after']);
      assert.deepEqual(u.rejects, ['truncated']);
    });

    it('stop() ends input: a partial line is truncated, held frames are counted as lost, nothing arrives after it', async () => {
      let open = true;
      const u = await start({}, () => (open ? 'accepted' : 'blocked'));
      await u.rig.send('one\n');
      await waitFor(() => u.taken.length === 1, 'a line');
      open = false;
      await u.rig.send('two\nthree\npar');
      await waitFor(() => u.source.heldFrames === 2 && u.source.bufferedBytes === 3, 'two frames held, a partial one buffered');
      await u.source.stop();
      assert.equal(u.source.health().up, false);
      assert.equal(u.source.health().detail, 'stopped');
      assert.deepEqual([...u.rejects].sort(), ['held_at_stop', 'held_at_stop', 'truncated'].sort());
      const offers = u.offers.count;
      open = true;
      await u.rig.send('late\n').catch(() => undefined); // the far end may see the port gone
      await steady(() => u.offers.count, 'no input after stop', 300);
      assert.equal(u.offers.count, offers, 'nothing offered after stop()');
      assert.deepEqual(u.taken, ['one']);
    });
  });
}

/** Resolves once `probe` kept the same value for `quietMs` (bounded): how a test sees that something stopped moving. */
export async function steady(probe: () => number, what: string, quietMs: number, timeoutMs = 10_000): Promise<void> {
  let last = probe();
  let since = Date.now();
  await waitFor(
    () => {
      const v = probe();
      if (v !== last) {
        last = v;
        since = Date.now();
        return false;
      }
      return Date.now() - since >= quietMs;
    },
    what,
    timeoutMs,
  );
}
