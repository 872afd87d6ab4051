/**
 * The health verdict behind `/healthz`, `/status`, the status page and
 * `spillway status`: a pure judge of a snapshot. Degraded, with one reason
 * each, when
 *
 *   stopping                           the daemon is shutting down
 *   a source is down                   `Driver.health().up` is false
 *   the spool is failing               `Totals.spoolFailing`: from a failed spool
 *                                      operation until a later write succeeds
 *   records wait with credit open      the watchdog's rule (watchdog.ts), for
 *   and nothing moved                  health.stallSeconds
 *   a group's records wait and none    for at least health.uplinkDownSeconds:
 *   of its consumers is connected      every WebSocket consumer, dial upstream
 *                                      and MQTT upstream of it is gone
 *
 * The last rule needs to know since when a group has had no consumer, so the
 * judge keeps that (`HealthState`) between calls; the daemon calls it once a
 * second so the time is right even when nobody asks. Each group is judged
 * on its own (without `groups`, one group `default` has every consumer,
 * dial and MQTT upstream), and its reason names that group's uplinks only.
 */
import type { SourceHealth } from '../../drivers/driver.js';
import type { UplinkState } from './uplink.js';

export interface GroupSnapshot {
  readonly group: string;
  /** Consumers of the group connected now (WebSocket consumers, dial and MQTT upstreams). */
  readonly consumers: number;
  /** Records waiting for the group: buffered + spooled. */
  readonly waiting: number;
}

export interface HealthSnapshot {
  /** Monotonic ms. */
  readonly now: number;
  readonly stopping: boolean;
  readonly sources: readonly SourceHealth[];
  readonly uplinks: readonly UplinkState[];
  readonly groups: readonly GroupSnapshot[];
  readonly spoolFailing: boolean;
  /** The watchdog's verdict (watchdog.ts): false when records wait with credit open and nothing moved. */
  readonly progressing: boolean;
  readonly stallSeconds: number;
  readonly uplinkDownSeconds: number;
  readonly consumers: number;
  readonly buffered: number;
  readonly spooled: number;
  readonly inflight: number;
  readonly heldBytes: number;
  /** limits.memoryBudgetBytes in force (a reload may change it). */
  readonly memoryBudgetBytes: number;
}

/** Per group: monotonic ms since which it has had no consumer connected. */
export interface HealthState {
  readonly goneSince: ReadonlyMap<string, number>;
}

export interface Health {
  readonly healthy: boolean;
  readonly status: 'ok' | 'degraded';
  readonly reasons: readonly string[];
  readonly sources: readonly SourceHealth[];
  readonly uplinks: readonly UplinkState[];
  readonly consumers: number;
  readonly buffered: number;
  readonly spooled: number;
  readonly inflight: number;
  readonly heldBytes: number;
  readonly memoryBudgetBytes: number;
}

export interface HealthVerdict {
  readonly state: HealthState;
  readonly health: Health;
}

export function judgeHealth(prev: HealthState | undefined, s: HealthSnapshot): HealthVerdict {
  const reasons = s.sources.filter((src) => !src.up).map((src) => `source ${src.name} is down: ${src.detail}`);
  if (s.stopping) reasons.push('stopping');
  if (s.spoolFailing) reasons.push('spool writes are failing (disk full or I/O error)');
  if (!s.stopping && !s.progressing) reasons.push(`records wait and consumers have credit, but nothing moved for ${s.stallSeconds} s`);
  const goneSince = new Map<string, number>();
  for (const g of s.groups) {
    if (g.consumers > 0) continue;
    const since = prev?.goneSince.get(g.group) ?? s.now;
    goneSince.set(g.group, since);
    const goneS = (s.now - since) / 1_000;
    if (!s.stopping && g.waiting > 0 && goneS >= s.uplinkDownSeconds) {
      const mine = s.uplinks.filter((u) => u.group === g.group);
      const uplinks = mine.length === 0 ? '' : ` (${mine.map((u) => `${u.name}: ${u.detail}`).join('; ')})`;
      reasons.push(`group ${g.group}: ${g.waiting} records wait and no consumer or uplink has been connected for ${Math.floor(goneS)} s${uplinks}`);
    }
  }
  const healthy = reasons.length === 0;
  return {
    state: { goneSince },
    health: {
      healthy,
      status: healthy ? 'ok' : 'degraded',
      reasons,
      sources: s.sources,
      uplinks: s.uplinks,
      consumers: s.consumers,
      buffered: s.buffered,
      spooled: s.spooled,
      inflight: s.inflight,
      heldBytes: s.heldBytes,
      memoryBudgetBytes: s.memoryBudgetBytes,
    },
  };
}

/** Keeps the judge's state between calls: `judge()` takes a fresh snapshot each time. */
export class HealthJudge {
  readonly #snapshot: () => HealthSnapshot;
  #state: HealthState | undefined;

  constructor(snapshot: () => HealthSnapshot) {
    this.#snapshot = snapshot;
  }

  readonly judge = (): Health => {
    const verdict = judgeHealth(this.#state, this.#snapshot());
    this.#state = verdict.state;
    return verdict.health;
  };
}
