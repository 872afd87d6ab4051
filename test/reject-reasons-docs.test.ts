/**
 * docs/OPERATIONS.md lists every `spillway_input_rejected_total` reason the
 * code emits, and none it does not: reason literals are read from the
 * sources (calls of `reject('…')`, `onReject('…')`, `onRefused('…')` under
 * drivers/ and daemon/) and from the framers' `REJECT_REASONS` (passed on
 * by the serial source as a variable) and the core's `REJECTIONS`
 * (counted by the daemon for every source), then compared with the table's
 * first column. The README links the page.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { REJECTIONS } from '../daemon/core/pipeline-types.js';
import { REJECT_REASONS } from '../drivers/serial/framing/framer.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CALL = /\b(?:reject|onReject|onRefused)\(\s*'([a-z_]+)'/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

async function emittedReasons(): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const add = (reason: string, where: string) => found.set(reason, [...(found.get(reason) ?? []), where]);
  for (const dir of ['drivers', 'daemon']) {
    for (const file of await sourceFiles(join(ROOT, dir))) {
      for (const m of (await readFile(file, 'utf8')).matchAll(CALL)) add(m[1] as string, file.slice(ROOT.length + 1));
    }
  }
  for (const r of REJECT_REASONS) add(r, 'drivers/serial/framing/framer.ts REJECT_REASONS');
  for (const r of REJECTIONS) add(r, 'daemon/core/pipeline-types.ts REJECTIONS (counted by the daemon for every source)');
  return found;
}

async function documentedReasons(): Promise<Set<string>> {
  const text = await readFile(join(ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
  const section = text.split('\n## ').find((s) => s.startsWith('Input that never became a record'));
  assert.ok(section, 'docs/OPERATIONS.md has the section "Input that never became a record"');
  return new Set([...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1] as string));
}

describe('reject reasons (docs/OPERATIONS.md)', () => {
  it('documents every reason the code emits, and only those', async () => {
    const emitted = await emittedReasons();
    // The scan itself must work: these are emitted by the MQTT source and the framers.
    for (const r of ['oversized', 'unrouted', 'blocked_too_long', 'invalid_json', 'truncated']) assert.ok(emitted.has(r), `the scan finds ${r}`);
    const documented = await documentedReasons();
    const undocumented = [...emitted.keys()].filter((r) => !documented.has(r)).map((r) => `${r} (${emitted.get(r)?.join(', ')})`);
    assert.deepEqual(undocumented, [], 'add these to the table in docs/OPERATIONS.md');
    const stale = [...documented].filter((r) => !emitted.has(r));
    assert.deepEqual(stale, [], 'the code no longer emits these: remove them from docs/OPERATIONS.md');
  });

  it('is linked from the README', async () => {
    assert.match(await readFile(join(ROOT, 'README.md'), 'utf8'), /\]\(docs\/OPERATIONS\.md\)/);
  });
});
