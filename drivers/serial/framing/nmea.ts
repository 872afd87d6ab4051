/**
 * `nmea`: NMEA 0183 sentences, `$...*HH` (or `!...*HH`, the AIS
 * encapsulation). HH is the XOR of the characters between the start
 * character and `*`, in hex. A sentence without the start character, with
 * nothing before `*`, or without `*` and two hex digits at its end is
 * `malformed`; a wrong sum is `bad_checksum`. The frame is the sentence
 * without line ending.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink, Framer } from './framer.js';
import { LineSplitter } from './line-splitter.js';
import { textLine } from './text.js';

export type NmeaFraming = Extract<FramingConfig, { type: 'nmea' }>;

export type NmeaCheck = 'ok' | 'malformed' | 'bad_checksum';

export class NmeaFramer implements Framer {
  readonly #splitter: LineSplitter;
  readonly #sink: FrameSink;

  constructor(cfg: NmeaFraming, sink: FrameSink) {
    this.#sink = sink;
    this.#splitter = new LineSplitter(Buffer.from('\n'), cfg.maxFrameBytes, {
      onLine: (line) => this.#line(line),
      onOversized: () => sink.onReject('oversized'),
    });
  }

  get bufferedBytes(): number {
    return this.#splitter.bufferedBytes;
  }

  push(chunk: Buffer): void {
    this.#splitter.push(chunk);
  }

  reset(): number {
    return this.#splitter.reset();
  }

  #line(line: Buffer): void {
    const text = textLine(line, 'ascii');
    if (text.kind === 'blank') return;
    if (text.kind === 'binary') return this.#sink.onReject('binary');
    const check = checkSentence(text.bytes.toString('latin1'));
    if (check !== 'ok') return this.#sink.onReject(check);
    this.#sink.onFrame(text.bytes);
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
