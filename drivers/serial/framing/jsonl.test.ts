import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonlFramer } from './jsonl.js';
import { RecordingSink } from './recording-sink.js';

function framed(...chunks: string[]): RecordingSink {
  const sink = new RecordingSink();
  const framer = new JsonlFramer({ type: 'jsonl', maxFrameBytes: 64 }, sink);
  for (const c of chunks) framer.push(Buffer.from(c, 'utf8'));
  return sink;
}

describe('jsonl framer', () => {
  it('emits each JSON line as received', () => {
    const sink = framed('{"t": 21.5}\r\n[1,', '2]\n\n"s"\n');
    assert.deepEqual(sink.frames, ['{"t": 21.5}', '[1,2]', '"s"']);
    assert.deepEqual(sink.rejects, []);
  });

  it('rejects lines that are not JSON as invalid_json', () => {
    const sink = framed('{"t":\n', 'nan\n', '{}\n');
    assert.deepEqual(sink.rejects, ['invalid_json', 'invalid_json']);
    assert.deepEqual(sink.frames, ['{}']);
  });

  it('rejects binary before parsing, over-long lines once', () => {
    const sink = framed('{"a":"\u0000"}\n', `{"a":"${'x'.repeat(100)}"}\n`, '1\n');
    assert.deepEqual(sink.rejects, ['binary', 'oversized']);
    assert.deepEqual(sink.frames, ['1']);
  });
});
