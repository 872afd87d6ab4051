/**
 * Measures heap cost per buffered record: ingests RECORDS 100-byte records
 * into one big ring with no consumer and compares heapUsed + arrayBuffers
 * before and after a full GC. Each payload is a fresh `Buffer.from` copy,
 * as the MQTT source makes, so pooled slabs are counted as they are in the
 * daemon. The figure is what `RECORD_OVERHEAD_BYTES` (daemon/core/record.ts)
 * estimates for the memory budget.
 *
 * Needs `global.gc`, so it runs in its own `node --expose-gc` process:
 * `measureHeapPerRecord()` spawns this file, which prints one JSON line.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { benchPipeline, ingest } from './core-pipeline.js';
import { payloadTemplate } from './stats.js';

const RECORDS = 200_000;

export interface HeapResult {
  readonly records: number;
  /** (heapUsed + arrayBuffers) growth per record, payload included. */
  readonly bytesPerRecord: number;
  readonly heapPerRecord: number;
  readonly arrayBuffersPerRecord: number;
}

/** `groups`: that many groups selecting the one stream (one payload copy must serve them all). */
export async function measureHeapPerRecord(groups = 1): Promise<HeapResult> {
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', self, String(groups)], { maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout) as HeapResult;
}

function measureHere(gc: () => void, groups: number): HeapResult {
  const settle = () => {
    for (let i = 0; i < 4; i++) gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed, ab: m.arrayBuffers };
  };
  const template = payloadTemplate();
  const p = benchPipeline(1_000_000, groups);
  ingest(p, Buffer.from(template), 0); // the stream itself is not per-record cost
  const before = settle();
  const ts = Date.now();
  for (let i = 1; i < RECORDS; i++) ingest(p, Buffer.from(template), ts);
  const after = settle();
  const n = RECORDS - 1;
  if (p.totals().buffered !== RECORDS) throw new Error(`expected ${RECORDS} buffered, got ${p.totals().buffered}`);
  const heapPerRecord = (after.heap - before.heap) / n;
  const arrayBuffersPerRecord = (after.ab - before.ab) / n;
  return { records: n, bytesPerRecord: heapPerRecord + arrayBuffersPerRecord, heapPerRecord, arrayBuffersPerRecord };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  process.stdout.write(`${JSON.stringify(measureHere(gc, Number(process.argv[2] ?? 1)))}\n`);
}
