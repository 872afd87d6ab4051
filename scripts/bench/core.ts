/**
 * The pure core alone, no I/O:
 *  - records/s through Pipeline ingest -> dispatch -> ack, one consumer,
 *    credit granted and every delivery acked in batches of BATCH, against a
 *    bare loop that pushes and shifts the same payloads through a plain array
 *    (the cost floor of "a queue in JS");
 *  - heap bytes per buffered 100-byte record (core-heap.ts, own process),
 *    against the budget's estimate, payload + RECORD_OVERHEAD_BYTES.
 */
import { RECORD_OVERHEAD_BYTES } from '../../daemon/core/record.js';
import { benchPipeline, ingest } from './core-pipeline.js';
import { measureHeapPerRecord } from './core-heap.js';
import { fmtRate, median, now, PAYLOAD_BYTES, payloadTemplate, type BenchLine } from './stats.js';

const RECORDS = 3_000_000;
const WARMUP_RECORDS = 300_000;
const BATCH = 1_000;
const TRIALS = 3;
/** Distinct payload objects cycled through (a power of two). */
const PAYLOADS = 1_024;

type Loop = (payloads: readonly Uint8Array[], records: number) => void;

/** ingest BATCH, grant BATCH credit, dispatch, ack what was delivered. */
const coreLoop: Loop = (payloads, records) => {
  const p = benchPipeline(2 * BATCH);
  p.connect(1, 'bench');
  const ts = Date.now();
  for (let done = 0; done < records; done += BATCH) {
    for (let i = 0; i < BATCH; i++) ingest(p, payloads[(done + i) & (PAYLOADS - 1)] as Uint8Array, ts);
    p.credit(1, BATCH);
    for (const d of p.dispatch(now())) p.ack(1, d.records.map((r) => r.seq));
  }
  const t = p.totals();
  if (t.acked !== records) throw new Error(`core bench: ${t.acked} of ${records} acked`);
};

/** The same batches through a plain array: push BATCH, shift them all. */
const arrayLoop: Loop = (payloads, records) => {
  const q: Uint8Array[] = [];
  let bytes = 0;
  for (let done = 0; done < records; done += BATCH) {
    for (let i = 0; i < BATCH; i++) q.push(payloads[(done + i) & (PAYLOADS - 1)] as Uint8Array);
    for (let r = q.shift(); r !== undefined; r = q.shift()) bytes += r.length;
  }
  if (bytes !== records * PAYLOAD_BYTES) throw new Error('array bench lost payloads');
};

function rate(loop: Loop, payloads: readonly Uint8Array[]): number {
  loop(payloads, WARMUP_RECORDS);
  const rates: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const t0 = now();
    loop(payloads, RECORDS);
    rates.push(RECORDS / ((now() - t0) / 1000));
  }
  return median(rates);
}

export async function runCore(): Promise<BenchLine[]> {
  const template = payloadTemplate();
  const payloads = Array.from({ length: PAYLOADS }, () => Buffer.from(template));

  const array = rate(arrayLoop, payloads);
  const core = rate(coreLoop, payloads);
  console.log(`core: ingest->dispatch->ack ${fmtRate(core)}, plain array push/shift ${fmtRate(array)} (${RECORDS} records, batches of ${BATCH}, median of ${TRIALS})`);

  const heap = await measureHeapPerRecord();
  const estimate = PAYLOAD_BYTES + RECORD_OVERHEAD_BYTES;
  console.log(
    `core: ${heap.bytesPerRecord.toFixed(1)} bytes per buffered ${PAYLOAD_BYTES}-byte record ` +
      `(heap ${heap.heapPerRecord.toFixed(1)} + arrayBuffers ${heap.arrayBuffersPerRecord.toFixed(1)}, ${heap.records} records); budget estimate ${estimate}`,
  );

  return [
    { bench: 'core ingest->ack', measured: fmtRate(core), baseline: `${fmtRate(array)} array`, ratio: core / array, note: `${RECORDS / 1e6}M x ${PAYLOAD_BYTES} B, batch ${BATCH}` },
    {
      bench: 'core bytes/record',
      measured: `${heap.bytesPerRecord.toFixed(0)} B`,
      baseline: `${estimate} B est.`,
      ratio: heap.bytesPerRecord / estimate,
      note: `heap ${heap.heapPerRecord.toFixed(0)} + buffers ${heap.arrayBuffersPerRecord.toFixed(0)}; est. = payload + RECORD_OVERHEAD_BYTES`,
    },
  ];
}
