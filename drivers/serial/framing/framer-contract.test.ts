/**
 * The contract every framer keeps, checked with fast-check against each one:
 * any chunking of a byte stream gives the same frames and rejects, in the
 * same order, as the stream in one piece; and no input, however hostile,
 * makes a framer hold more than maxFrameBytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FramingConfig } from '../config.js';
import { chunked } from './chunked.js';
import { createFramer } from './create-framer.js';
import { RecordingSink } from './recording-sink.js';

const MAX = 24;

const FRAMINGS: ReadonlyArray<{ readonly label: string; readonly cfg: FramingConfig; readonly tokens: readonly string[] }> = [
  { label: 'lines \\n', cfg: { type: 'lines', delimiter: '\n', maxFrameBytes: MAX }, tokens: ['hello', 'x', '\n', '\r', '\r\n', 'é'] },
  { label: 'lines \\r\\n', cfg: { type: 'lines', delimiter: '\r\n', maxFrameBytes: MAX }, tokens: ['abc', '\r', '\n', '\r\n', '\r\r\n'] },
  { label: 'lines "aab"', cfg: { type: 'lines', delimiter: 'aab', maxFrameBytes: MAX }, tokens: ['a', 'aa', 'b', 'ab', 'aab', 'aaab', 'xyz'] },
  { label: 'lines latin1', cfg: { type: 'lines', delimiter: '\n', encoding: 'latin1', maxFrameBytes: MAX }, tokens: ['caf\xe9', '\n', 'ok'] },
  { label: 'jsonl', cfg: { type: 'jsonl', maxFrameBytes: MAX }, tokens: ['{"a":1}', '[1,2]', '"s"', '{', '}', '\n', '\r\n', 'null', ' '] },
  { label: 'csv', cfg: { type: 'csv', header: true, delimiter: ',', maxFrameBytes: MAX }, tokens: ['t,h', '1,2', '"a,b"', ',', '"', '\n', '\r\n', '3.5', 'x'] },
  { label: 'nmea', cfg: { type: 'nmea', maxFrameBytes: MAX }, tokens: ['$GPXTE,A*4A', '$GPXTE,A*00', 'GPXTE', '$', '*', '4A', '\n', '\r\n', '!A*41'] },
  { label: 'fixed', cfg: { type: 'fixed', frameBytes: 5, maxFrameBytes: MAX }, tokens: ['abcde', 'x', '\n'] },
];

/** Bytes made of the framing's interesting tokens and random bytes (NUL, invalid UTF-8 included). */
function streamOf(tokens: readonly string[]): fc.Arbitrary<Buffer> {
  const token = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...tokens).map((t) => Buffer.from(t, 'latin1')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * MAX }).map((n) => Buffer.alloc(n, 0x41)) },
  );
  return fc.array(token, { maxLength: 60 }).map((parts) => Buffer.concat(parts));
}

function run(cfg: FramingConfig, chunks: readonly Buffer[]): { trace: string[]; maxBuffered: number } {
  const sink = new RecordingSink();
  const framer = createFramer(cfg, sink);
  let maxBuffered = 0;
  for (const c of chunks) {
    framer.push(c);
    maxBuffered = Math.max(maxBuffered, framer.bufferedBytes);
  }
  return { trace: sink.trace, maxBuffered };
}

for (const { label, cfg, tokens } of FRAMINGS) {
  describe(`framer contract: ${label}`, () => {
    it('gives the same frames and rejects however the stream is chunked', () => {
      fc.assert(
        fc.property(streamOf(tokens), fc.array(fc.nat(), { maxLength: 30 }), (bytes, cuts) => {
          const whole = run(cfg, [bytes]).trace;
          assert.deepEqual(run(cfg, chunked(bytes, cuts)).trace, whole);
          const byteByByte = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
          assert.deepEqual(run(cfg, byteByByte).trace, whole);
        }),
        { numRuns: 300 },
      );
    });

    it('never holds more than maxFrameBytes, whatever garbage comes in', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 4 * MAX }), { maxLength: 40 }), (chunks) => {
          assert.ok(run(cfg, chunks.map((c) => Buffer.from(c))).maxBuffered <= MAX);
        }),
        { numRuns: 300 },
      );
    });

    it('reset drops the partial frame and reports its size', () => {
      const sink = new RecordingSink();
      const framer = createFramer(cfg, sink);
      framer.push(Buffer.from('abc'));
      assert.equal(framer.reset(), 3);
      assert.equal(framer.bufferedBytes, 0);
      assert.equal(framer.reset(), 0);
    });
  });
}
