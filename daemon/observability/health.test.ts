import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeHealth, type HealthSnapshot, type HealthState } from './health.js';
import type { UplinkState } from './uplink.js';

const dial: UplinkState = { name: 'cloud', kind: 'dial', group: 'default', url: 'wss://cloud.example/', connected: false, lastAckAt: null, inflight: 0, window: 100, reconnects: 3, detail: 'reconnecting (3 failed attempts)' };

function snap(over: Partial<HealthSnapshot> = {}): HealthSnapshot {
  return {
    now: 0,
    stopping: false,
    sources: [{ name: 'mqtt', up: true, detail: 'connected' }],
    uplinks: [dial],
    groups: [{ group: 'default', consumers: 0, waiting: 10 }],
    spoolFailing: false,
    progressing: true,
    stallSeconds: 30,
    uplinkDownSeconds: 60,
    consumers: 0,
    buffered: 10,
    spooled: 0,
    inflight: 0,
    heldBytes: 2_000,
    memoryBudgetBytes: 1_000_000,
    ...over,
  };
}

/** Judges the snapshots in turn, threading the state; returns the last verdict. */
function run(...snaps: HealthSnapshot[]) {
  let state: HealthState | undefined;
  let last;
  for (const s of snaps) {
    last = judgeHealth(state, s);
    state = last.state;
  }
  if (last === undefined) throw new Error('no snapshot');
  return last.health;
}

describe('judgeHealth', () => {
  it('is ok while records wait for less than uplinkDownSeconds with every uplink gone', () => {
    const h = run(snap({ now: 0 }), snap({ now: 59_999 }));
    assert.deepEqual(h.reasons, []);
    assert.equal(h.status, 'ok');
  });

  it('turns degraded once records have waited uplinkDownSeconds with no consumer or uplink, naming each uplink', () => {
    const h = run(snap({ now: 0 }), snap({ now: 30_000 }), snap({ now: 60_000 }));
    assert.equal(h.healthy, false);
    assert.deepEqual(h.reasons, ['group default: 10 records wait and no consumer or uplink has been connected for 60 s (cloud: reconnecting (3 failed attempts))']);
    assert.deepEqual(h.uplinks, [dial]);
  });

  it('names only the uplinks of the group that waits', () => {
    const archiver: UplinkState = { ...dial, name: 'tape', kind: 'mqtt', group: 'archive', detail: 'disconnected' };
    const groups = [
      { group: 'default', consumers: 1, waiting: 10 },
      { group: 'archive', consumers: 0, waiting: 4 },
    ];
    const h = run(snap({ now: 0, uplinks: [dial, archiver], groups }), snap({ now: 60_000, uplinks: [dial, archiver], groups }));
    assert.deepEqual(h.reasons, ['group archive: 4 records wait and no consumer or uplink has been connected for 60 s (tape: disconnected)']);
  });

  it('counts from when the last consumer left, and starts over when one connects', () => {
    const connected = { groups: [{ group: 'default', consumers: 1, waiting: 10 }] };
    const h = run(snap({ now: 0 }), snap({ now: 50_000, ...connected }), snap({ now: 51_000 }), snap({ now: 110_000 }));
    assert.deepEqual(h.reasons, []);
    assert.equal(run(snap({ now: 0 }), snap({ now: 50_000, ...connected }), snap({ now: 51_000 }), snap({ now: 111_000 })).healthy, false);
  });

  it('is ok with every uplink gone when nothing waits', () => {
    const h = run(snap({ now: 0, groups: [{ group: 'default', consumers: 0, waiting: 0 }] }), snap({ now: 600_000, groups: [{ group: 'default', consumers: 0, waiting: 0 }] }));
    assert.equal(h.healthy, true);
  });

  it('judges each group on its own', () => {
    const groups = (now: number): HealthSnapshot =>
      snap({
        now,
        groups: [
          { group: 'cloud', consumers: 1, waiting: 5 },
          { group: 'archive', consumers: 0, waiting: 7 },
        ],
      });
    assert.deepEqual(run(groups(0), groups(60_000)).reasons, ['group archive: 7 records wait and no consumer or uplink has been connected for 60 s'], "the dial is the default group's: not named");
  });

  it('reports the spool failing for as long as Totals.spoolFailing says, and no longer', () => {
    assert.deepEqual(run(snap({ spoolFailing: true, groups: [] })).reasons, ['spool writes are failing (disk full or I/O error)']);
    assert.deepEqual(run(snap({ spoolFailing: true, groups: [] }), snap({ spoolFailing: false, groups: [] })).reasons, []);
  });

  it('lists a down source, a stall and stopping, in that order', () => {
    const h = run(snap({ sources: [{ name: 'gps', up: false, detail: 'cannot open /dev/ttyUSB0' }], progressing: false, groups: [] }));
    assert.deepEqual(h.reasons, ['source gps is down: cannot open /dev/ttyUSB0', 'records wait and consumers have credit, but nothing moved for 30 s']);
    assert.deepEqual(run(snap({ stopping: true, groups: [] })).reasons, ['stopping']);
  });

  it('reports the memory budget in force (a reload changes it)', () => {
    assert.equal(run(snap({ memoryBudgetBytes: 16 * 1_048_576 })).memoryBudgetBytes, 16 * 1_048_576);
  });
});
