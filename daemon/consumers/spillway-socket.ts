/**
 * The WebSocket class of both connection modes (accepted in listen mode,
 * opened in dial mode).
 *
 * ws refuses a frame above `maxPayload` while reading its header (so the
 * payload is never buffered) and closes at once with 1009. The protocol wants
 * an `error` message first: this subclass sends it just before that close.
 */
import { WebSocket } from 'ws';
import { encodeError } from './protocol.js';

/** ws's close code for a frame above `maxPayload`. */
const CLOSE_TOO_BIG = 1009;

export class SpillwaySocket extends WebSocket {
  override close(code?: number, data?: string | Buffer): void {
    if (code === CLOSE_TOO_BIG && this.readyState === WebSocket.OPEN) {
      this.send(encodeError('bad_message', 'frame exceeds the maximum frame size'));
    }
    super.close(code, data);
  }
}
