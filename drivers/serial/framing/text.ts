/**
 * What the text framings (lines, jsonl, csv, nmea) do to every line before
 * their own checks: strip a trailing `\r`, skip blank lines, and refuse
 * binary (a NUL byte, or bytes that are not text in the encoding).
 */
import { isUtf8 } from 'node:buffer';

export const TEXT_ENCODINGS = ['utf8', 'ascii', 'latin1'] as const;
export type TextEncoding = (typeof TEXT_ENCODINGS)[number];

export type TextLine =
  | { readonly kind: 'text'; readonly bytes: Buffer }
  | { readonly kind: 'blank' }
  | { readonly kind: 'binary' };

const CR = 0x0d;
const NUL = 0x00;

export function textLine(line: Buffer, encoding: TextEncoding = 'utf8'): TextLine {
  const bytes = line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line;
  if (bytes.length === 0) return { kind: 'blank' };
  if (bytes.includes(NUL) || !isText(bytes, encoding)) return { kind: 'binary' };
  return { kind: 'text', bytes };
}

function isText(bytes: Buffer, encoding: TextEncoding): boolean {
  switch (encoding) {
    case 'utf8':
      return isUtf8(bytes);
    case 'ascii':
      return bytes.every((b) => b < 0x80);
    case 'latin1':
      return true;
    default: {
      const unknown: never = encoding;
      throw new Error(`unknown encoding ${String(unknown)}`);
    }
  }
}
