/**
 * Where the memory ring and the spool behave the same, they pass the same
 * suite: a per-stream FIFO that hands records back oldest first, counts
 * records and bytes exactly, and reports what no longer fits instead of
 * losing it silently.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { MemorySpool } from '../spool/memory-spool.js';
import type { SpoolPort } from '../spool/spool-port.js';
import { SqliteSpool } from '../spool/sqlite-spool.js';
import { Ring } from './ring.js';

interface Item {
  readonly seq: number;
  readonly size: number;
}

/** The shared shape: bounded by `capacityBytes`. */
interface Fifo {
  append(item: Item): boolean;
  takeOldest(): Item | undefined;
  readonly length: number;
  readonly bytes: number;
}

const CAPACITY_RECORDS = 16;
const CAPACITY_BYTES = 400;

function ringFifo(): Fifo {
  const ring = new Ring<Item>(CAPACITY_RECORDS, CAPACITY_BYTES);
  return {
    append: (item) => ring.push(item).ok,
    takeOldest: () => ring.shift(),
    get length() {
      return ring.length;
    },
    get bytes() {
      return ring.bytes;
    },
  };
}

/** A spool used as one stream's FIFO, with the quota check the pipeline does before writing. */
function spoolFifo(spool: SpoolPort): Fifo {
  let after = 0;
  let length = 0;
  let bytes = 0;
  return {
    append(item) {
      if (length >= CAPACITY_RECORDS || bytes + item.size > CAPACITY_BYTES) return false;
      spool.write([{ seq: item.seq, stream: 's', prio: 1, ts: 0, born: 0, attempt: 0, payload: Buffer.alloc(item.size) }]);
      length++;
      bytes += item.size;
      return true;
    },
    takeOldest() {
      const row = spool.read('s', after, Number.MAX_SAFE_INTEGER, 1)[0];
      if (row === undefined) return undefined;
      spool.delete([row.seq]);
      after = row.seq;
      length--;
      bytes -= row.payload.length;
      return { seq: row.seq, size: row.payload.length };
    },
    get length() {
      return length;
    },
    get bytes() {
      return bytes;
    },
  };
}

const dirs: string[] = [];
function fifoDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-fifo-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const impls: Array<[string, () => Fifo]> = [
  ['memory ring', ringFifo],
  ['memory spool', () => spoolFifo(new MemorySpool())],
  ['sqlite spool', () => spoolFifo(SqliteSpool.open({ file: join(fifoDir(), 'spool.db'), synchronous: 'normal' }).spool)],
];

for (const [name, make] of impls) {
  describe(`FIFO contract: ${name}`, () => {
    it('returns records oldest first, counts exactly, refuses what does not fit', () => {
      fc.assert(
        fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constant(-1)), { maxLength: 60 }), (ops) => {
          const fifo = make();
          const model: Item[] = [];
          let seq = 1;
          for (const op of ops) {
            if (op < 0) {
              assert.deepEqual(fifo.takeOldest(), model.shift());
            } else {
              const item = { seq: seq++, size: op };
              const fits = model.length < CAPACITY_RECORDS && model.reduce((a, i) => a + i.size, 0) + op <= CAPACITY_BYTES;
              assert.equal(fifo.append(item), fits);
              if (fits) model.push(item);
            }
            assert.equal(fifo.length, model.length);
            assert.equal(fifo.bytes, model.reduce((a, i) => a + i.size, 0));
          }
        }),
        { numRuns: name === 'sqlite spool' ? 30 : 200 },
      );
    });
  });
}
