import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FixedFramer } from './fixed.js';
import { RecordingSink } from './recording-sink.js';

describe('fixed framer', () => {
  it('cuts frames of frameBytes across chunks, any byte value allowed', () => {
    const sink = new RecordingSink();
    const framer = new FixedFramer({ type: 'fixed', frameBytes: 4, maxFrameBytes: 4 }, sink);
    framer.push(Buffer.from([0, 1, 2]));
    framer.push(Buffer.from([3, 10, 0xff, 6, 7, 8, 9, 10, 11, 12]));
    assert.deepEqual(
      sink.emitted.map((e) => ('frame' in e ? [...e.frame] : e.reject)),
      [
        [0, 1, 2, 3],
        [10, 0xff, 6, 7],
        [8, 9, 10, 11],
      ],
    );
    assert.equal(framer.bufferedBytes, 1);
  });

  it('hands out copies the framer does not reuse', () => {
    const sink = new RecordingSink();
    const framer = new FixedFramer({ type: 'fixed', frameBytes: 2, maxFrameBytes: 2 }, sink);
    framer.push(Buffer.from([1]));
    framer.push(Buffer.from([2, 3]));
    framer.push(Buffer.from([4]));
    assert.deepEqual(sink.trace, ['frame:0102', 'frame:0304']);
  });
});
