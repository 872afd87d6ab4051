import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IngestOutcome } from '../../daemon/core/pipeline-types.js';
import { ClientIntake, type IntakeHooks, type RefuseReason } from './client-intake.js';

const route = { stream: 's', priority: undefined };

/** Hooks whose outcomes and kept() the test decides; what happened is recorded. */
function harness(outcomes: IngestOutcome[], keptResult: () => Promise<boolean> = () => Promise.resolve(true)) {
  const ingested: string[] = [];
  const refused: RefuseReason[] = [];
  const lost: string[] = [];
  let keptCalls = 0;
  const hooks: IntakeHooks = {
    ingest: (_r, payload) => {
      const outcome = outcomes.shift() ?? 'accepted';
      if (outcome !== 'blocked') ingested.push(payload.toString());
      return outcome;
    },
    kept: () => {
      keptCalls++;
      return keptResult();
    },
    refused: (reason) => refused.push(reason),
    lost: (o) => lost.push(o),
  };
  const done: Array<[string, string | null]> = [];
  const cb = (name: string) => (err?: Error | null) => done.push([name, err ? err.message.split(':')[0] as string : null]);
  return { hooks, ingested, refused, lost, done, cb, keptCalls: () => keptCalls };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ClientIntake', () => {
  it('acknowledges in arrival order, one kept() for what one turn took', async () => {
    const h = harness([]);
    const intake = new ClientIntake(h.hooks, 1_000);
    for (const n of ['a', 'b', 'c']) intake.offer(route, Buffer.from(n), true, h.cb(n));
    assert.deepEqual(h.done, [], 'nothing acknowledged before kept() resolved');
    await tick();
    assert.deepEqual(h.done, [['a', null], ['b', null], ['c', null]]);
    assert.equal(h.keptCalls(), 1);
  });

  it('kept() false: nothing of the batch acknowledged, the client refused', async () => {
    const h = harness([], () => Promise.resolve(false));
    const intake = new ClientIntake(h.hooks, 1_000);
    intake.offer(route, Buffer.from('a'), true, h.cb('a'));
    intake.offer(route, Buffer.from('q0'), false, h.cb('q0'));
    await tick();
    assert.deepEqual(h.done, [['a', 'not_kept'], ['q0', null]]);
    assert.deepEqual(h.refused, ['not_kept']);
    intake.offer(route, Buffer.from('later'), true, h.cb('later'));
    await tick();
    assert.deepEqual(h.done.at(-1), ['later', 'not_kept'], 'refused from then on');
  });

  it('blocked: holds the head and what follows, resumes in order, nothing ingested twice', async () => {
    const h = harness(['accepted', 'blocked', 'blocked']);
    const intake = new ClientIntake(h.hooks, 1_000);
    for (const n of ['a', 'b', 'c']) intake.offer(route, Buffer.from(n), true, h.cb(n));
    await tick();
    assert.deepEqual(h.done, [['a', null]]);
    assert.equal(intake.blocked, true);
    intake.resume(); // still no room
    assert.equal(intake.blocked, true);
    intake.resume(); // room
    await tick();
    assert.deepEqual(h.done, [['a', null], ['b', null], ['c', null]]);
    assert.deepEqual(h.ingested, ['a', 'b', 'c']);
    assert.equal(intake.blocked, false);
  });

  it('blocked past maxBlockMs: the client is refused, nothing held acknowledged', async () => {
    const h = harness(['blocked']);
    const intake = new ClientIntake(h.hooks, 20);
    intake.offer(route, Buffer.from('a'), true, h.cb('a'));
    intake.offer(route, Buffer.from('b'), true, h.cb('b'));
    await new Promise((r) => setTimeout(r, 40));
    await tick();
    assert.deepEqual(h.refused, ['blocked_too_long']);
    assert.deepEqual(h.done, [['a', 'blocked_too_long'], ['b', 'blocked_too_long']]);
    assert.deepEqual(h.ingested, []);
  });

  it('dropped or rejected at intake (the daemon decided and counted): acknowledged in order, and what follows goes on', async () => {
    const h = harness(['accepted', 'dropped', 'rejected', 'accepted']);
    const intake = new ClientIntake(h.hooks, 1_000);
    for (const n of ['a', 'b', 'c', 'd']) intake.offer(route, Buffer.from(n), true, h.cb(n));
    await tick();
    assert.deepEqual(h.done, [['a', null], ['b', null], ['c', null], ['d', null]]);
    assert.deepEqual(h.ingested, ['a', 'b', 'c', 'd'], 'each offered to the pipeline once');
    assert.deepEqual([h.refused, h.lost], [[], []]);
  });

  it('refuse (intake closed): what was taken is still acknowledged once kept, what waits is not', async () => {
    let resolveKept: (ok: boolean) => void = () => undefined;
    const h = harness(['accepted', 'blocked'], () => new Promise((r) => (resolveKept = r)));
    const intake = new ClientIntake(h.hooks, 1_000);
    intake.offer(route, Buffer.from('a'), true, h.cb('a'));
    intake.offer(route, Buffer.from('b'), true, h.cb('b'));
    intake.refuse('closed', 'intake closed');
    const settled = intake.settled();
    resolveKept(true);
    await settled;
    assert.deepEqual(h.done, [['a', null], ['b', 'closed']]);
  });
});
