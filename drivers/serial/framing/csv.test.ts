import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CsvFramer, csvValue, splitCsvRow, type CsvFraming } from './csv.js';
import { RecordingSink } from './recording-sink.js';

function framed(cfg: Partial<CsvFraming>, ...chunks: string[]): { sink: RecordingSink; objects: unknown[] } {
  const sink = new RecordingSink();
  const framer = new CsvFramer({ type: 'csv', header: true, delimiter: ',', maxFrameBytes: 128, ...cfg }, sink);
  for (const c of chunks) framer.push(Buffer.from(c, 'utf8'));
  return { sink, objects: sink.frames.map((f) => JSON.parse(f) as unknown) };
}

describe('csv framer', () => {
  it('turns rows into objects named by the header, numbers as numbers', () => {
    const { objects, sink } = framed({}, 'id,temp,label\r\n', '007,21.5,"a,b"\n', '12345678901234567890,-3,\n');
    assert.deepEqual(objects, [
      { id: '007', temp: 21.5, label: 'a,b' },
      { id: '12345678901234567890', temp: -3, label: '' },
    ]);
    assert.deepEqual(sink.rejects, []);
  });

  it('skips the header when the device prints it again', () => {
    const { objects } = framed({}, 'a,b\n1,2\na,b\n3,4\n');
    assert.deepEqual(objects, [{ a: 1, b: 2 }, { a: 3, b: 4 }]);
  });

  it('uses configured columns, with or without a header row', () => {
    assert.deepEqual(framed({ header: false, columns: ['x', 'y'] }, '1,2\n').objects, [{ x: 1, y: 2 }]);
    assert.deepEqual(framed({ header: true, columns: ['x', 'y'] }, 'A,B\n1,2\n').objects, [{ x: 1, y: 2 }]);
  });

  it('rejects rows with the wrong field count or a broken quote as malformed', () => {
    const { objects, sink } = framed({ delimiter: ';' }, 'a;b\n1\n1;2;3\n"x;2\n"x"y;2\n5;6\n');
    assert.deepEqual(sink.rejects, ['malformed', 'malformed', 'malformed', 'malformed']);
    assert.deepEqual(objects, [{ a: 5, b: 6 }]);
  });

  it('keeps a column named __proto__ as data', () => {
    const { sink } = framed({}, '__proto__,b\n1,2\n');
    assert.deepEqual(sink.frames, ['{"__proto__":1,"b":2}']);
  });

  it('splits quoted fields as RFC 4180 does', () => {
    assert.deepEqual(splitCsvRow('"a ""q""",b,', ','), [
      { text: 'a "q"', quoted: true },
      { text: 'b', quoted: false },
      { text: '', quoted: false },
    ]);
    assert.equal(splitCsvRow('"open', ','), undefined);
  });

  it('reads numbers only where a double keeps them', () => {
    assert.equal(csvValue({ text: ' 1e3 ', quoted: false }), 1000);
    assert.equal(csvValue({ text: '1e999', quoted: false }), '1e999');
    assert.equal(csvValue({ text: '12', quoted: true }), '12');
    assert.equal(csvValue({ text: '0x10', quoted: false }), '0x10');
  });
});
