import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { ConfigError } from '../daemon/errors.js';
import { describeIssue, formatPath, formatValue } from './describe-issue.js';
import { parseConfig, parseConfigText } from './load.js';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'spillway.example.yaml');

/** Every leaf key path of a plain object (array items under `[]`). */
function keyPaths(v: unknown, prefix = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((item) => keyPaths(item, `${prefix}[]`));
  if (v === null || typeof v !== 'object') return [prefix];
  return Object.entries(v).flatMap(([k, child]) => keyPaths(child, prefix ? `${prefix}.${k}` : k));
}

describe('config', () => {
  it('has a default for every key: an empty file is a working config', () => {
    const c = parseConfigText('');
    assert.equal(c.sources.embeddedBroker.enabled, true);
    assert.equal(c.consumers.listen.port, 7420);
    assert.equal(c.admin.port, 7421);
    assert.deepEqual(c.sources.embeddedBroker.subscriptions, [{ topic: 'sensors/#', stream: '{topic}' }]);
    assert.deepEqual(c.sources.mqtt, [], 'no external broker by default: the embedded one ingests in process');
    assert.ok(Object.isFrozen(c.consumers), 'frozen');
  });

  it('the commented example is valid and shows every key', async () => {
    const text = await readFile(EXAMPLE, 'utf8');
    const example = parseConfigText(text);
    const shown = new Set(keyPaths(example).map((p) => p.replace(/^streams\.[^.]+/, 'streams.*')));
    // A streams entry takes the keys of streamDefaults (shown there); the example's entry shows some of them.
    const defaults = [...keyPaths(parseConfig({})), 'streams.*.priority', 'streams.*.whenFull'];
    const missing = defaults.filter((p) => !shown.has(p));
    const commentedOut = ['sources.mqtt[].clientId', 'sources.mqtt[].username', 'sources.mqtt[].password', 'sources.mqtt[].subscriptions[].priority', 'sources.mqtt[].maxBlockMs', 'sources.mqtt[].tls', 'sources.embeddedBroker.username', 'sources.embeddedBroker.password', 'sources.embeddedBroker.maxBlockMs', 'sources.embeddedBroker.subscriptions[].priority'];
    for (const key of commentedOut) assert.ok(text.includes(`# ${key.split('.').pop()}:`), `${key} is shown, commented out`);
    assert.deepEqual(missing, []);
  });

  it('a streams entry takes the keys it does not set from streamDefaults, not from the schema', async () => {
    const { streamSpec } = await import('../daemon/pipeline-options.js');
    const c = parseConfig({ streamDefaults: { whenFull: 'block', capacityRecords: 500, ttlMs: 60_000 }, streams: { alarm: { priority: 0 } } });
    assert.deepEqual(c.streams, { alarm: { priority: 0 } });
    assert.deepEqual(streamSpec(c, 'alarm'), { ...c.streamDefaults, priority: 0 });
    assert.equal(streamSpec(c, 'alarm').whenFull, 'block');
  });

  it('lists every problem with key, value and what is allowed', () => {
    assert.throws(
      () => parseConfigText('limits:\n  maxStreams: -1\n  extra: true\nconsumers:\n  ackTimeoutMs: fast\n'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems, [
          'limits.maxStreams: -1 is not allowed: expected at least 1',
          'limits.extra: unknown key (allowed here: memoryBudgetBytes, maxStreams, maxStreamNameBytes, streamIdleSeconds, maxPayloadBytes, reservedShares)',
          'consumers.ackTimeoutMs: "fast" is not allowed: expected number',
        ]);
        return true;
      },
    );
  });

  it('refuses YAML alias bombs and duplicate keys', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)].join('\n');
    assert.throws(() => parseConfigText(bomb), ConfigError);
    assert.throws(() => parseConfigText('log:\n  level: info\nlog:\n  level: debug\n'), ConfigError);
  });

  it('names keys and values so a terminal shows them as they are', () => {
    assert.equal(formatPath([]), '(top level)');
    assert.equal(formatPath(['sources', 'serial', 0, 'framing', 'type']), 'sources.serial[0].framing.type');
    assert.equal(formatPath(['streams', 'sensors/alarm', 'priority']), 'streams["sensors/alarm"].priority');
    assert.equal(formatPath(['streams', 'a.b\u001b']), 'streams["a.b\\u001b"]');
    assert.equal(formatPath(['x\u202e']), '["x\\u202e"]', 'a bidi override is escaped too');
    assert.equal(formatValue(Number.POSITIVE_INFINITY), '.inf');
    assert.equal(formatValue(Number.NaN), '.nan');
    assert.equal(formatValue(null), 'null (an empty value)');
    assert.equal(formatValue('x'.repeat(61)), `"${'x'.repeat(40)}…" (61 characters)`);
    assert.equal(formatValue({ a: [1, 2] }), '{"a":[1,2]}');
  });

  it('words a refinement as what is allowed, or as the rule it states', () => {
    const custom = (message: string) => ({ code: 'custom', path: ['x'], message, input: 'v' }) as z.core.$ZodIssue;
    assert.deepEqual(describeIssue(custom('a URL that parses'), { x: 'v' }), ['x: "v" is not allowed: expected a URL that parses']);
    assert.deepEqual(describeIssue(custom('certFile and keyFile go together'), { x: 'v' }), ['x: "v" is not allowed: certFile and keyFile go together']);
    assert.deepEqual(describeIssue(custom('a persistent session needs a fixed clientId'), {}), ['x: is required: a persistent session needs a fixed clientId']);
  });

  it('suggests the key a typo meant, and only then', () => {
    const problems = (text: string) => {
      try {
        parseConfigText(text);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    assert.match(problems('admin:\n  Port: 1\n')[0] ?? '', /^admin\.Port: unknown key \(did you mean port\? allowed here: /);
    assert.match(problems('spool:\n  quotaByte: 1\n')[0] ?? '', /did you mean quotaBytes\?/);
    assert.match(problems('spool:\n  zzz: 1\n')[0] ?? '', /^spool\.zzz: unknown key \(allowed here: /);
  });
});
