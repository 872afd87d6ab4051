/**
 * The messages of docs/PROTOCOL.md v1: parsing what consumers send (pure,
 * every field checked) and encoding what the daemon sends.
 *
 * Error codes: `bad_message` for a frame that is not a valid message
 * (binary, oversized, not JSON, not an object, unknown type, a field out of
 * range); `protocol` for a valid message at the wrong time or of the wrong
 * version (credit before hello, a second hello, no hello in time).
 */
import { isAscii, isUtf8 } from 'node:buffer';
import type { Rec } from '../core/record.js';

export const SUBPROTOCOL = 'spillway.v1';
export const PROTOCOL_VERSION = 1;
export const MAX_CREDIT_GRANT = 2 ** 31 - 1;
const MAX_CONSUMER_NAME = 128;

export const ERROR_CODES = ['unauthorized', 'bad_message', 'protocol', 'too_many_consumers', 'shutting_down', 'unknown_group'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type ClientMessage =
  | {
      readonly type: 'hello';
      readonly v: number;
      readonly consumer: string;
      readonly token: string | undefined;
      /** The group joined (absent: `default`); a tap joins none. */
      readonly group: string | undefined;
      readonly tap: boolean;
    }
  | { readonly type: 'credit'; readonly n: number }
  | { readonly type: 'ack'; readonly seqs: readonly number[] }
  | { readonly type: 'nack'; readonly seqs: readonly number[] };

export type ParseResult = { readonly ok: true; readonly msg: ClientMessage } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

const bad = (message: string): ParseResult => ({ ok: false, code: 'bad_message', message });

export function parseClientMessage(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('not a JSON object');
  const m = value as Record<string, unknown>;
  switch (m['type']) {
    case 'hello': {
      const { v, consumer, token, group, tap } = m;
      if (typeof v !== 'number') return bad('hello.v must be a number');
      if (typeof consumer !== 'string' || consumer.length < 1 || consumer.length > MAX_CONSUMER_NAME) {
        return bad(`hello.consumer must be a string of 1-${MAX_CONSUMER_NAME} chars`);
      }
      if (token !== undefined && typeof token !== 'string') return bad('hello.token must be a string');
      if (group !== undefined && (typeof group !== 'string' || group.length < 1 || group.length > MAX_CONSUMER_NAME)) {
        return bad(`hello.group must be a string of 1-${MAX_CONSUMER_NAME} chars`);
      }
      if (tap !== undefined && typeof tap !== 'boolean') return bad('hello.tap must be true or false');
      if (tap === true && group !== undefined) return bad('hello: a tap joins no group (tap and group together)');
      return { ok: true, msg: { type: 'hello', v, consumer, token, group, tap: tap === true } };
    }
    case 'credit': {
      const n = m['n'];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CREDIT_GRANT) {
        return bad(`credit.n must be an integer from 1 to ${MAX_CREDIT_GRANT}, got ${JSON.stringify(n)}`);
      }
      return { ok: true, msg: { type: 'credit', n } };
    }
    case 'ack':
    case 'nack': {
      const type = m['type'];
      const seqs = m['seqs'];
      if (!Array.isArray(seqs)) return bad(`${type}.seqs must be an array`);
      for (const s of seqs) {
        if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 1) return bad(`${type}.seqs must hold positive integers, got ${JSON.stringify(s)}`);
      }
      return { ok: true, msg: { type, seqs: seqs as number[] } };
    }
    default:
      return bad(`unknown message type ${JSON.stringify(m['type'])}`.slice(0, 200));
  }
}

/** `welcome` names the group joined, or says `tap`. */
export function encodeWelcome(session: string, maxCredit: number, ackTimeoutMs: number, joined: { readonly group: string } | { readonly tap: true } = { group: 'default' }): string {
  return JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, session, maxCredit, ackTimeoutMs, ...joined });
}

export function encodeError(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', code, message });
}

/**
 * `{"type":"records","records":[...]}` for records[from, to). Built by
 * concatenation: the hot path of every delivery.
 */
export function encodeRecords(records: readonly Rec[], from: number, to: number): string {
  let out = '{"type":"records","records":[';
  for (let i = from; i < to; i++) {
    const r = records[i] as Rec;
    if (i > from) out += ',';
    out += encodeRecord(r);
  }
  return out + ']}';
}

export function encodeRecord(r: Rec): string {
  const p = r.payload;
  const buf = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  // ASCII (most sensor payloads) decodes fastest as latin1; other valid UTF-8 as utf8; the rest is base64.
  const text = isAscii(buf) ? buf.toString('latin1') : isUtf8(buf) ? buf.toString('utf8') : undefined;
  const data = text !== undefined ? JSON.stringify(text) : `"${buf.toString('base64')}"`;
  return (
    `{"seq":${r.seq},"stream":${r.stream.quotedName},"prio":${r.prio},"ts":${r.ts},` +
    `"data":${data},"enc":"${text !== undefined ? 'utf8' : 'base64'}","attempt":${r.attempt}}`
  );
}
