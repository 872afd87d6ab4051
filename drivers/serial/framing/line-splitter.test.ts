import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { chunked } from './chunked.js';
import { endMatch, LineSplitter } from './line-splitter.js';

function split(delimiter: string, max: number, chunks: readonly Buffer[]): string[] {
  const out: string[] = [];
  const s = new LineSplitter(Buffer.from(delimiter), max, {
    onLine: (l) => out.push(l.toString('latin1')),
    onOversized: () => out.push('<oversized>'),
  });
  for (const c of chunks) s.push(c);
  return out;
}

/** The obvious model: the whole input split at each delimiter, left to right. */
function model(delimiter: string, max: number, input: string): string[] {
  const parts = input.split(delimiter);
  const tail = parts.pop() as string;
  const out = parts.map((p) => (p.length > max ? '<oversized>' : p));
  const tailContent = tail.length - endMatch(Buffer.from(tail, 'latin1'), Buffer.from(delimiter));
  if (tailContent > max) out.push('<oversized>');
  return out;
}

describe('line splitter', () => {
  it('splits at the delimiter and keeps the rest for the next chunk', () => {
    assert.deepEqual(split('\n', 10, [Buffer.from('ab\ncd'), Buffer.from('e\n\nf')]), ['ab', 'cde', '']);
  });

  it('finds a multi-byte delimiter split across chunks', () => {
    assert.deepEqual(split('\r\n', 10, [Buffer.from('ab\r'), Buffer.from('\ncd\r'), Buffer.from('x\r\n')]), ['ab', 'cd\rx']);
    assert.deepEqual(split('aab', 10, [Buffer.from('xa'), Buffer.from('a'), Buffer.from('ab')]), ['xa']);
  });

  it('allows a line of exactly maxFrameBytes, rejects one byte more once', () => {
    assert.deepEqual(split('\n', 4, [Buffer.from('abcd\nabcde\nok\n')]), ['abcd', '<oversized>', 'ok']);
    assert.deepEqual(split('\r\n', 4, [Buffer.from('abcd\r'), Buffer.from('\n')]), ['abcd']);
  });

  it('counts one reject per over-long run and drops it up to the next delimiter', () => {
    const chunks = Array.from({ length: 100 }, () => Buffer.alloc(1000, 0x78));
    assert.deepEqual(split('\n', 64, [...chunks, Buffer.from('\nnext\n')]), ['<oversized>', 'next']);
  });

  it('matches the split-the-whole-input model', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('\n', '\r\n', 'aab', 'abab'),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.constantFrom('a', 'b', '\r', '\n', 'x', 'aab', 'abab', 'xxxxxxxxxxxxxx'), { maxLength: 40 }).map((p) => p.join('')),
        fc.array(fc.nat(), { maxLength: 20 }),
        (delimiter, max, input, cuts) => {
          const bytes = Buffer.from(input, 'latin1');
          assert.deepEqual(split(delimiter, max, chunked(bytes, cuts)), model(delimiter, max, input));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('endMatch is the longest delimiter prefix the input ends with', () => {
    assert.equal(endMatch(Buffer.from('xaa'), Buffer.from('aab')), 2);
    assert.equal(endMatch(Buffer.from('xa'), Buffer.from('aab')), 1);
    assert.equal(endMatch(Buffer.from('xab'), Buffer.from('aab')), 0);
    assert.equal(endMatch(Buffer.from('a'), Buffer.from('\n')), 0);
  });
});
