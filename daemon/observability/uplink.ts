/**
 * What an operator needs to know about one uplink (a `consumers.dial[]`
 * upstream or an `upstreams.mqtt[]` broker): whether it is connected, when it
 * last acked, how much of its window is in use and how often it reconnected.
 * Shown on `/healthz`, `/status`, the status page and `spillway status`.
 */
export interface UplinkState {
  readonly name: string;
  readonly kind: 'dial' | 'mqtt';
  /** The group whose records it takes (`group` in its config). */
  readonly group: string;
  /** The configured URL without user name or password. */
  readonly url: string;
  readonly connected: boolean;
  /** Wall-clock ms of the last ack (dial) or PUBACK (MQTT); null before the first. */
  readonly lastAckAt: number | null;
  /** Records sent to it and not yet acked, against the most it may hold now (MQTT: the window; dial: maxCredit). */
  readonly inflight: number;
  readonly window: number;
  /** Connections that failed or were lost since the daemon started. */
  readonly reconnects: number;
  /** One line, e.g. `connected, window 64` or `reconnecting (3 failed attempts)`. */
  readonly detail: string;
}

/** A URL as it may be shown: user name and password removed. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    // Not a URL: drop everything between the scheme and the last @ (a password may hold a /).
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^]*@/i, '$1');
  }
}
