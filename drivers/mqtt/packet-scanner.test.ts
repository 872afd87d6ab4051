import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publishPacket, remainingLength } from '../../test/helpers/raw-mqtt.js';
import { CONTROL_ROOM_BYTES, PacketScanner } from './packet-scanner.js';

/** A PUBLISH with a topic given as raw bytes and `payloadBytes` of payload. */
const publish = (topic: Buffer, payloadBytes: number, qos: 0 | 1 = 1): Buffer => publishPacket(topic, Buffer.alloc(payloadBytes, 0x61), qos, 7);

/** Feeds a stream in chunks of `size` bytes; returns the first refusal. */
function scanIn(scanner: PacketScanner, bytes: Buffer, size: number) {
  for (let i = 0; i < bytes.length; i += size) {
    const r = scanner.scan(bytes.subarray(i, i + size));
    if (r !== undefined) return r;
  }
  return undefined;
}

/** CONNECT: MQTT 3.1.1, clean session, keepalive 30 s, client id "c1". */
const connect = Buffer.from([0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 30, 0, 2, 0x63, 0x31]);
const pingreq = Buffer.from([0xc0, 0]);
/** The largest remaining length MQTT can express (just under 256 MiB). */
const MAX_REMAINING = 268_435_455;

describe('PacketScanner', () => {
  it('passes a stream of valid packets, whatever the chunking', () => {
    const stream = Buffer.concat([connect, publish(Buffer.from('sensors/a'), 100), publish(Buffer.from('sensors/ü/\uFFFD'), 0, 0), pingreq, publish(Buffer.from('s'), 1_000)]);
    for (const size of [1, 2, 3, 7, 64, stream.length]) assert.equal(scanIn(new PacketScanner(1_000), stream, size), undefined, `chunks of ${size}`);
  });

  it('refuses a PUBLISH announcing more than the payload limit from its header alone', () => {
    const header = Buffer.concat([Buffer.from([0x32]), remainingLength(MAX_REMAINING)]);
    assert.deepEqual(new PacketScanner(1_000).scan(header), { reason: 'oversized', announcedBytes: MAX_REMAINING, limitBytes: 1_000 + 2 + 65_535 + 2 });
  });

  it('refuses a payload one byte over the limit once the topic length is known, and takes one at the limit', () => {
    assert.deepEqual(scanIn(new PacketScanner(1_000), publish(Buffer.from('t/x'), 1_001), 1), { reason: 'oversized', announcedBytes: 1_001, limitBytes: 1_000 });
    assert.equal(scanIn(new PacketScanner(1_000), publish(Buffer.from('t/x'), 1_000), 1), undefined);
  });

  it('bounds packets other than PUBLISH too', () => {
    const big = Buffer.concat([Buffer.from([0x82]), remainingLength(1_000 + CONTROL_ROOM_BYTES + 1)]);
    assert.equal(new PacketScanner(1_000).scan(big)?.reason, 'oversized');
  });

  it('refuses topics holding U+0000 or bytes that are not UTF-8, even split across reads', () => {
    for (const size of [1, 4, 1_000]) {
      assert.deepEqual(scanIn(new PacketScanner(1_000), Buffer.concat([connect, publish(Buffer.from('sensors/a\u0000b'), 3)]), size), { reason: 'bad_topic', problem: 'nul' });
      assert.deepEqual(scanIn(new PacketScanner(1_000), Buffer.concat([connect, publish(Buffer.from([0x73, 0x2f, 0xff, 0xfe]), 3)]), size), { reason: 'bad_topic', problem: 'invalid_utf8' });
      // An encoded surrogate (U+D800) is not UTF-8 either.
      assert.deepEqual(scanIn(new PacketScanner(1_000), publish(Buffer.from([0x73, 0xed, 0xa0, 0x80]), 0), size), { reason: 'bad_topic', problem: 'invalid_utf8' });
    }
  });

  it('refuses a remaining length longer than four bytes', () => {
    assert.equal(new PacketScanner(1_000).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))?.reason, 'malformed');
  });
});
