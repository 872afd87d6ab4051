import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSentence, NmeaFramer } from './nmea.js';
import { RecordingSink } from './recording-sink.js';

const GGA = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
const RMC = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A';
const AIS = '!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C';

function framed(...chunks: Array<string | Buffer>): RecordingSink {
  const sink = new RecordingSink();
  const framer = new NmeaFramer({ type: 'nmea', maxFrameBytes: 96 }, sink);
  for (const c of chunks) framer.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return sink;
}

describe('nmea framer', () => {
  it('emits sentences with a good checksum', () => {
    const sink = framed(`${GGA}\r\n${RMC.slice(0, 20)}`, `${RMC.slice(20)}\r\n${AIS}\n`);
    assert.deepEqual(sink.frames, [GGA, RMC, AIS]);
    assert.deepEqual(sink.rejects, []);
  });

  it('rejects a wrong checksum as bad_checksum', () => {
    assert.deepEqual(framed(`${GGA.slice(0, -2)}48\r\n`).rejects, ['bad_checksum']);
  });

  it('rejects sentences without $, * or hex digits as malformed', () => {
    const sink = framed('GPGGA,1*47\r\n$GPGGA,1\r\n$GPGGA,1*4\r\n$GPGGA,1*ZZ\r\n$GPGGA,1*47x\r\n*47\r\n');
    assert.deepEqual(sink.rejects, ['malformed', 'malformed', 'malformed', 'malformed', 'malformed', 'malformed']);
  });

  it('rejects non-ASCII bytes as binary', () => {
    assert.deepEqual(framed(Buffer.from('$GP\xe9*00\r\n', 'latin1')).rejects, ['binary']);
  });

  it('checks the XOR of the characters between the start and *', () => {
    assert.equal(checkSentence(GGA), 'ok');
    assert.equal(checkSentence(RMC.replace('*6A', '*6a')), 'ok');
    assert.equal(checkSentence(AIS), 'ok');
    assert.equal(checkSentence('$*00'), 'malformed');
  });
});
