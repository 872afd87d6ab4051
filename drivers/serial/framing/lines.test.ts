import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinesFramer, type LinesFraming } from './lines.js';
import { RecordingSink } from './recording-sink.js';

function framed(cfg: Partial<LinesFraming>, ...chunks: Array<string | Buffer>): RecordingSink {
  const sink = new RecordingSink();
  const framer = new LinesFramer({ type: 'lines', delimiter: '\n', maxFrameBytes: 16, ...cfg }, sink);
  for (const c of chunks) framer.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return sink;
}

describe('lines framer', () => {
  it('emits each line without the delimiter and a trailing \\r, skipping blank lines', () => {
    const sink = framed({}, 't=21.5\r\n', '\r\n', '\nh=40', '\n');
    assert.deepEqual(sink.frames, ['t=21.5', 'h=40']);
    assert.deepEqual(sink.rejects, []);
  });

  it('uses a custom delimiter', () => {
    assert.deepEqual(framed({ delimiter: ';' }, 'a;b', ';c').frames, ['a', 'b']);
  });

  it('rejects binary lines: NUL or invalid UTF-8', () => {
    const sink = framed({}, Buffer.from([0x61, 0x00, 0x62, 0x0a, 0xff, 0xfe, 0x0a]), 'ok ✓\n');
    assert.deepEqual(sink.trace.map((t) => (t.startsWith('frame:') ? 'frame' : t)), ['reject:binary', 'reject:binary', 'frame']);
    assert.deepEqual(sink.frames, ['ok ✓']);
  });

  it('rejects an over-long line once and goes on after its delimiter', () => {
    const sink = framed({}, 'x'.repeat(10), 'x'.repeat(10), 'x'.repeat(10), '\nshort\n');
    assert.deepEqual(sink.rejects, ['oversized']);
    assert.deepEqual(sink.frames, ['short']);
  });

  it('ascii refuses 8-bit bytes; latin1 re-encodes them as UTF-8', () => {
    const latin = Buffer.from('caf\xe9\n', 'latin1');
    assert.deepEqual(framed({ encoding: 'ascii' }, latin).rejects, ['binary']);
    assert.deepEqual(framed({ encoding: 'latin1' }, latin).frames, ['café']);
  });
});
