import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LIVE_KEYS, changedKeys, restartKeys } from './reload.js';

const TOKEN = 'a'.repeat(32);
const base = (): Config => parseConfig({ streams: { gps: { priority: 0 } }, consumers: { tokens: [TOKEN] } });
/** The base config with one change, made on a plain copy and validated again. */
function changed(edit: (c: Record<string, any>) => void): Config {
  const c = structuredClone(base()) as Record<string, any>;
  edit(c);
  return parseConfig(c);
}

describe('reload diff', () => {
  it('two parses of the same config differ in nothing', () => {
    assert.deepEqual(changedKeys(base(), base()), []);
  });

  it('names the leaf that changed, with its full path', () => {
    assert.deepEqual(changedKeys(base(), changed((c) => (c.consumers.maxCredit = 5))), ['consumers.maxCredit']);
    assert.deepEqual(changedKeys(base(), changed((c) => (c.streams.gps.whenFull = 'block'))), ['streams.gps.whenFull']);
    assert.deepEqual(changedKeys(base(), changed((c) => (c.spool.file = 'other.db'))), ['spool.file']);
  });

  it('names array items by index, and items added or removed', () => {
    assert.deepEqual(changedKeys(base(), changed((c) => c.consumers.tokens.push('b'.repeat(32)))), ['consumers.tokens.1']);
    assert.deepEqual(changedKeys(base(), changed((c) => (c.consumers.tokens = ['c'.repeat(32)]))), ['consumers.tokens.0']);
    assert.deepEqual(changedKeys(base(), changed((c) => (c.consumers.tokens = []))), ['consumers.tokens.0']);
  });

  it('a stream added or removed is named by its key; a whole added object is one key', () => {
    const more = changed((c) => (c.streams.imu = { priority: 2 }));
    assert.deepEqual(changedKeys(base(), more), ['streams.imu']);
    assert.deepEqual(changedKeys(more, base()), ['streams.imu']);
  });

  it('compares leaves with Object.is and tells an array from an object with the same keys', () => {
    assert.deepEqual(changedKeys({ x: NaN }, { x: NaN }), []);
    assert.deepEqual(changedKeys({ x: 0 }, { x: -0 }), ['x']);
    assert.deepEqual(changedKeys({ x: null }, { x: {} }), ['x']);
    assert.deepEqual(changedKeys({ x: ['p'] }, { x: { 0: 'p' } }), ['x']);
    assert.deepEqual(changedKeys({ x: { y: 1 } }, { x: 1 }), ['x']);
    assert.deepEqual(changedKeys(1, 2), ['']);
  });

  it('finds exactly the one leaf changed anywhere in a random document', () => {
    const leaf = fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.boolean(), fc.constant(null));
    const doc = fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }).filter((k) => !k.includes('.') && k !== '__proto__'), fc.oneof(leaf, fc.dictionary(fc.constantFrom('p', 'q', 'r'), leaf), fc.array(leaf, { maxLength: 3 })), { minKeys: 1 });
    fc.assert(
      fc.property(doc, fc.nat(), (a, pick) => {
        assert.deepEqual(changedKeys(a, structuredClone(a)), []);
        // Every leaf path of `a`, then change one of them.
        const paths: string[][] = [];
        const walk = (v: unknown, path: string[]) => {
          if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
          else paths.push(path);
        };
        walk(a, []);
        const path = paths[pick % paths.length] as string[];
        const b = structuredClone(a) as Record<string, unknown>;
        let at: Record<string, unknown> = b;
        for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
        at[path.at(-1) as string] = 'changed!'; // longer than any generated string: always a different leaf
        assert.deepEqual(changedKeys(a, b), [path.join('.')]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('reload: live or restart', () => {
  it('every live key, and every key below one, applies live', () => {
    assert.deepEqual(restartKeys([...LIVE_KEYS]), []);
    assert.deepEqual(restartKeys(['streams.gps.whenFull', 'consumers.tokens.3', 'streamDefaults.ttlMs', 'limits.reservedShares.gps']), []);
  });

  it('a key that only shares a prefix of characters with a live key needs a restart', () => {
    assert.deepEqual(restartKeys(['log.levels', 'streamsX', 'consumers.maxCreditBurst']), ['log.levels', 'streamsX', 'consumers.maxCreditBurst']);
  });

  it('a parent of live keys needs a restart (it may hold keys that are not live)', () => {
    assert.deepEqual(restartKeys(['consumers', 'limits', 'log']), ['consumers', 'limits', 'log']);
  });

  it('of a reload that changes live and restart keys, only the restart keys are named', () => {
    const next = changed((c) => {
      c.consumers.maxCredit = 7;
      c.consumers.listen.port = 7431;
      c.spool.quotaBytes = 1_000_000;
      c.spool.synchronous = 'full';
    });
    const diff = changedKeys(base(), next);
    assert.deepEqual([...diff].sort(), ['consumers.listen.port', 'consumers.maxCredit', 'spool.quotaBytes', 'spool.synchronous']);
    assert.deepEqual([...restartKeys(diff)].sort(), ['consumers.listen.port', 'spool.synchronous']);
  });

  it('the keys the running daemon cannot change live need a restart', () => {
    const cases: Array<[string, (c: Record<string, any>) => void]> = [
      ['dataDir', (c) => (c.dataDir = '/var/lib/elsewhere')],
      ['durability', (c) => (c.durability = 'durable')],
      ['spool.checkpointCron', (c) => (c.spool.checkpointCron = '*/5 * * * * *')],
      ['consumers.maxConsumers', (c) => (c.consumers.maxConsumers = 3)],
      ['admin.port', (c) => (c.admin.port = 9999)],
    ];
    for (const [key, edit] of cases) assert.deepEqual(restartKeys(changedKeys(base(), changed(edit))), [key]);
  });
});
