/**
 * `nmea`: NMEA 0183 sentences, `$...*HH` (or `!...*HH`, the AIS
 * encapsulation). HH is the XOR of the characters between the start
 * character and `*`, in hex. A sentence without the start character, with
 * nothing before `*`, or without `*` and two hex digits at its end is
 * `malformed`; a wrong sum is `bad_checksum`. The frame is the sentence
 * without line ending.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink } from './framer.js';
import { TextLineFramer } from './text-line-framer.js';

export type NmeaFraming = Extract<FramingConfig, { type: 'nmea' }>;

export type NmeaCheck = 'ok' | 'malformed' | 'bad_checksum';

export class NmeaFramer extends TextLineFramer {
  constructor(cfg: NmeaFraming, sink: FrameSink) {
    super(Buffer.from('\n'), cfg.maxFrameBytes, 'ascii', sink);
  }

  protected text(bytes: Buffer): void {
    const check = checkSentence(bytes.toString('latin1'));
    if (check !== 'ok') return this.sink.onReject(check);
    this.sink.onFrame(bytes);
  }
}

const CHECKSUM = /^[0-9A-Fa-f]{2}$/;

export function checkSentence(sentence: string): NmeaCheck {
  const star = sentence.length - 3;
  if (!(sentence.startsWith('$') || sentence.startsWith('!')) || star < 2 || sentence[star] !== '*') return 'malformed';
  const hex = sentence.slice(star + 1);
  if (!CHECKSUM.test(hex)) return 'malformed';
  let sum = 0;
  for (let i = 1; i < star; i++) sum ^= sentence.charCodeAt(i);
  return sum === Number.parseInt(hex, 16) ? 'ok' : 'bad_checksum';
}
