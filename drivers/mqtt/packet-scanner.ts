/**
 * Reads the framing of an inbound MQTT 3.1.1 byte stream ahead of the
 * broker's parser, so what must be refused is refused before it is buffered:
 *
 *   fixed header: type|flags (1 byte), remaining length (varint, 1-4 bytes)
 *   PUBLISH:      topic length (2 bytes), topic, [packet id (2) if QoS > 0], payload
 *
 *   type ──> length ──┬─ PUBLISH ──> topic-length ──> topic ──> skip ──> type
 *                     └─ other ────────────────────────────────> skip ──> type
 *
 * mqtt-packet (aedes's parser) keeps a packet's bytes until the whole packet
 * has arrived, and decodes topics lossily; the scanner sees the announced
 * length and the raw topic first. Its state is a few numbers plus at most
 * one topic (≤ 64 KiB, only when a topic straddles two reads): bodies are
 * skipped, never held.
 */
import { topicBytesProblem } from './router.js';

export type ScanRefusal =
  | { readonly reason: 'oversized'; readonly announcedBytes: number; readonly limitBytes: number }
  | { readonly reason: 'bad_topic'; readonly problem: 'nul' | 'invalid_utf8' }
  | { readonly reason: 'malformed'; readonly problem: string };

const PUBLISH = 3;
/** Room for what a non-PUBLISH packet carries besides a payload-sized will: client id, will topic, user, password. */
export const CONTROL_ROOM_BYTES = 4 * 65_537;

type State = 'type' | 'length' | 'topic-length' | 'topic' | 'skip';

export class PacketScanner {
  readonly #maxPayloadBytes: number;
  #state: State = 'type';
  #type = 0;
  #qos = 0;
  #remaining = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  /** Bytes of the current packet not yet read. */
  #left = 0;
  #topicLength = 0;
  #topicHigh = -1;
  /** The parts of a topic split across reads (empty in the common case). */
  #topicParts: Buffer[] = [];
  #topicHave = 0;

  constructor(maxPayloadBytes: number) {
    this.#maxPayloadBytes = maxPayloadBytes;
  }

  /** Reads one chunk; a refusal means the connection must be closed (nothing further is read). */
  scan(chunk: Buffer): ScanRefusal | undefined {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case 'type': {
          const b = chunk[i++] as number;
          this.#type = b >> 4;
          this.#qos = (b >> 1) & 3;
          this.#remaining = 0;
          this.#multiplier = 1;
          this.#lengthBytes = 0;
          this.#state = 'length';
          break;
        }
        case 'length': {
          const b = chunk[i++] as number;
          this.#remaining += (b & 0x7f) * this.#multiplier;
          this.#multiplier *= 128;
          if (++this.#lengthBytes > 4) return { reason: 'malformed', problem: 'remaining length longer than 4 bytes' };
          if ((b & 0x80) !== 0) break;
          const refusal = this.#headerDone();
          if (refusal !== undefined) return refusal;
          break;
        }
        case 'topic-length': {
          const b = chunk[i++] as number;
          this.#left--;
          if (this.#topicHigh < 0) {
            this.#topicHigh = b;
            break;
          }
          const refusal = this.#topicLengthDone((this.#topicHigh << 8) | b);
          if (refusal !== undefined) return refusal;
          break;
        }
        case 'topic': {
          const want = this.#topicLength - this.#topicHave;
          const take = Math.min(want, n - i);
          const part = chunk.subarray(i, i + take);
          i += take;
          this.#left -= take;
          if (take < want) {
            // Copied: the chunk's memory belongs to the broker's parser from here on.
            this.#topicParts.push(Buffer.from(part));
            this.#topicHave += take;
            break;
          }
          const topic = this.#topicParts.length === 0 ? part : Buffer.concat([...this.#topicParts, part]);
          this.#topicParts = [];
          this.#topicHave = 0;
          const problem = topicBytesProblem(topic);
          if (problem !== undefined) return { reason: 'bad_topic', problem };
          this.#state = this.#left === 0 ? 'type' : 'skip';
          break;
        }
        case 'skip': {
          const take = Math.min(this.#left, n - i);
          i += take;
          this.#left -= take;
          if (this.#left === 0) this.#state = 'type';
          break;
        }
        default: {
          const unknown: never = this.#state;
          throw new Error(`unknown scanner state ${String(unknown)}`);
        }
      }
    }
    return undefined;
  }

  #headerDone(): ScanRefusal | undefined {
    const announced = this.#remaining;
    const publish = this.#type === PUBLISH;
    // A PUBLISH: 2 + topic (≤ 65,535) + packet id + payload. Checked again exactly once the topic length is known.
    const limit = publish ? this.#maxPayloadBytes + 2 + 65_535 + 2 : this.#maxPayloadBytes + CONTROL_ROOM_BYTES;
    if (announced > limit) return { reason: 'oversized', announcedBytes: announced, limitBytes: limit };
    this.#left = announced;
    if (publish && announced >= 2) {
      this.#topicHigh = -1;
      this.#state = 'topic-length';
    } else {
      this.#state = announced === 0 ? 'type' : 'skip';
    }
    return undefined;
  }

  #topicLengthDone(topicLength: number): ScanRefusal | undefined {
    const idBytes = this.#qos > 0 ? 2 : 0;
    if (topicLength + idBytes > this.#left) return { reason: 'malformed', problem: 'topic longer than the packet' };
    const payload = this.#left - topicLength - idBytes;
    if (payload > this.#maxPayloadBytes) return { reason: 'oversized', announcedBytes: payload, limitBytes: this.#maxPayloadBytes };
    this.#topicLength = topicLength;
    this.#state = topicLength > 0 ? 'topic' : this.#left === 0 ? 'type' : 'skip';
    return undefined;
  }
}
