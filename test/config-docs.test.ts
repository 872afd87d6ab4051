/**
 * docs/CONFIG.md is generated from the schema and must not drift from it:
 * the file equals `renderConfigDocs()`, every key has a description, and
 * config/descriptions.ts names no key the schema has lost.
 * Regenerate with `node dist/scripts/gen-config-docs.js`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configRows, renderConfigDocs } from '../config/docs.js';
import { DESCRIPTIONS } from '../config/descriptions.js';
import { parseConfig } from '../config/load.js';

const DOCS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'CONFIG.md');

describe('config reference (docs/CONFIG.md)', () => {
  it('is what renderConfigDocs() makes of the schema (regenerate: node dist/scripts/gen-config-docs.js)', async () => {
    const file = (await readFile(DOCS, 'utf8')).split('\n');
    const want = renderConfigDocs().split('\n');
    const line = want.findIndex((l, i) => file[i] !== l);
    if (line >= 0 || file.length !== want.length) {
      const at = line >= 0 ? line : Math.min(file.length, want.length);
      assert.fail(`docs/CONFIG.md is out of date (line ${at + 1}: has ${JSON.stringify(file[at])}, the schema gives ${JSON.stringify(want[at])}): run npx tsc -p . && node dist/scripts/gen-config-docs.js`);
    }
  });

  it('describes every key of the schema', () => {
    const missing = configRows()
      .filter((r) => r.description.trim() === '')
      .map((r) => r.key);
    assert.deepEqual(missing, [], 'add these keys to config/descriptions.ts (or .describe() them in the schema)');
  });

  it('describes no key the schema does not have', () => {
    const rows = configRows();
    const stale = Object.keys(DESCRIPTIONS).filter((k) => {
      const [key, tag] = k.split('@');
      return !rows.some((r) => r.key === key && (tag === undefined || r.type.endsWith(`: \`${tag}\`)`)));
    });
    assert.deepEqual(stale, [], 'remove these from config/descriptions.ts');
  });

  it('shows the defaults the schema applies', () => {
    const defaults = parseConfig({});
    for (const row of configRows()) {
      if (row.key.includes('[') || row.key.includes('<') || !row.default.startsWith('`')) continue;
      const value = row.key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], defaults);
      if (value === null || typeof value === 'object') continue;
      const shown = row.default.slice(1, row.default.indexOf('`', 1));
      assert.equal(shown, typeof value === 'string' && !/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value) ? JSON.stringify(value) : String(value), row.key);
    }
  });

  it('is a Markdown table per section with one row per key', () => {
    const text = renderConfigDocs();
    for (const row of configRows()) assert.ok(text.includes(`| \`${row.key}\` |`) || text.includes(`\n## \`${row.key}\`\n`), row.key);
    assert.match(text, /^# spillway configuration reference$/m);
  });
});
