import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serialPortSchema, streamOf } from './config.js';

function problems(input: unknown): string[] {
  const r = serialPortSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.code}${'values' in i ? ` ${JSON.stringify(i.values)}` : ''}`);
}

describe('serial port config', () => {
  it('fills every default from a name and a path', () => {
    const c = serialPortSchema.parse({ name: 'gps', path: '/dev/ttyUSB0' });
    assert.deepEqual(c, {
      name: 'gps',
      path: '/dev/ttyUSB0',
      baudRate: 9600,
      dataBits: 8,
      parity: 'none',
      stopBits: 1,
      rtscts: false,
      framing: { type: 'lines', delimiter: '\n', maxFrameBytes: 4096 },
      reconnect: { initialMs: 500, maxMs: 30_000 },
    });
    assert.equal(streamOf(c), 'gps');
    assert.equal(streamOf({ ...c, stream: 'nav' }), 'nav');
  });

  it('fills framing defaults per type', () => {
    const csv = serialPortSchema.parse({ name: 'a', path: '/dev/x', framing: { type: 'csv' } }).framing;
    assert.deepEqual(csv, { type: 'csv', header: true, delimiter: ',', maxFrameBytes: 4096 });
  });

  it('lists the allowed baud rates for a non-standard one', () => {
    const [issue] = problems({ name: 'a', path: '/dev/x', baudRate: 9601 });
    assert.match(issue ?? '', /^baudRate: invalid_value \[1200,2400,4800,9600,19200,38400,57600,115200,230400,460800,921600\]$/);
  });

  it('rejects unknown keys, unknown framings and inconsistent settings', () => {
    assert.deepEqual(problems({ name: 'a', path: '/dev/x', speed: 1 }), [': unrecognized_keys']);
    assert.deepEqual(problems({ name: 'a', path: '/dev/x', framing: { type: 'slip' } }), ['framing.type: invalid_union']);
    assert.deepEqual(problems({ name: 'a', path: '/dev/x', framing: { type: 'csv', header: false } }), ['framing.columns: custom']);
    assert.deepEqual(problems({ name: 'a', path: '/dev/x', framing: { type: 'fixed', frameBytes: 8192 } }), ['framing.frameBytes: custom']);
    assert.deepEqual(problems({ name: 'a', path: '/dev/x', reconnect: { initialMs: 5_000, maxMs: 1_000 } }), ['reconnect.maxMs: custom']);
    assert.deepEqual(problems({ name: 'a b', path: '' }), ['name: invalid_format', 'path: too_small']);
    assert.deepEqual(problems({ name: 'a', path: '/dev/x', dataBits: 9, stopBits: 3, parity: 'high' }), [
      'dataBits: invalid_value [5,6,7,8]',
      'parity: invalid_value ["none","even","odd","mark","space"]',
      'stopBits: invalid_value [1,1.5,2]',
    ]);
  });
});
