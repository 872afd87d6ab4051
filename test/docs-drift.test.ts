/**
 * Figures and commands in the docs that can drift from the code, checked
 * against the code (as test/config-docs.test.ts does for docs/CONFIG.md):
 *   - the README's two commands: apt-get update, --no-install-recommends,
 *     root or sudo, and the same packages and `npm test` as .ci/run;
 *   - one command form: no `node dist/daemon/cli.js` and no bare `spillway`
 *     in the README's shell blocks, and `npx spillway` works from a checkout
 *     without fetching anything;
 *   - the per-record overhead (RECORD_OVERHEAD_BYTES) wherever it is quoted;
 *   - the unit's stall figure is health.stallSeconds' default;
 *   - the commented example shows the defaults, except the `streams:` entry;
 *   - nothing points at a protocol document outside the repo.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig, parseConfigText } from '../config/load.js';
import { RECORD_OVERHEAD_BYTES } from '../daemon/core/record.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFile(join(ROOT, path), 'utf8');
const exec = promisify(execFile);

/** The lines of the README's ```sh blocks. */
function shellLines(readme: string): string[] {
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] ?? '').split('\n')).filter((l) => l.trim() !== '');
}

describe('docs that can drift from the code', () => {
  it("the README's two commands update apt, skip recommends, work as root or with sudo, and install what .ci/run installs", async () => {
    const readme = await read('README.md');
    const [run, test] = shellLines(readme);
    for (const line of [run, test]) {
      assert.match(line ?? '', /^S=\$\(command -v sudo\); \$S apt-get update && \$S apt-get install -y --no-install-recommends [a-z0-9+ -]+ && npm ci && npm (start|test) /);
    }
    assert.match(run ?? '', /&& npm ci && npm start +#/);
    assert.match(test ?? '', /&& npm ci && npm test +#/);
    const packages = (line: string) => (/--no-install-recommends ([a-z0-9+ -]+?) &&/.exec(line)?.[1] ?? '').split(' ').sort();
    const ci = await read('.ci/run');
    const ciPackages = (/^PACKAGES=\(([^)]*)\)$/m.exec(ci)?.[1] ?? '').split(' ').sort();
    assert.deepEqual(packages(test ?? ''), ciPackages);
    assert.ok(ciPackages.includes('strace'));
    assert.deepEqual(packages(run ?? ''), ['g++', 'make', 'python3']);
    assert.equal(ci.trimEnd().split('\n').at(-1), 'npm test', '.ci/run ends with the README test command');
  });

  it('uses one command form: npx spillway, which runs from a checkout without fetching anything', async () => {
    const readme = await read('README.md');
    const bad = shellLines(readme).filter((l) => /^(sudo )?(spillway|node dist\/daemon\/cli\.js) /.test(l.trim()));
    assert.deepEqual(bad, []);
    assert.ok(shellLines(readme).some((l) => l.startsWith('npx spillway status')));
    const pkg = JSON.parse(await read('package.json')) as { name: string; bin: Record<string, string> };
    assert.deepEqual(pkg.bin, { spillway: 'dist/daemon/cli.js' });
    const example = join(ROOT, 'config', 'spillway.example.yaml');
    // --offline: npm may use nothing but what is here; a lookup in the registry would fail the test.
    const { stdout } = await exec('npx', ['--offline', 'spillway', 'check-config', example], { cwd: ROOT, timeout: 60_000 });
    assert.equal(stdout, `${example}: ok\n`);
  });

  it('quotes the per-record overhead the memory budget charges', async () => {
    const n = RECORD_OVERHEAD_BYTES;
    assert.match(await read('config/spillway.example.yaml'), new RegExp(`payload bytes plus ${n} bytes each`));
    assert.match(await read('README.md'), new RegExp(`payload \\+ ~?${n} B`));
    assert.match(await read('systemd/spillway.service'), new RegExp(`payload \\+ ${n} B each`));
    assert.match(await read('docs/PROTOCOL.md'), new RegExp(`payload plus ${n} bytes of overhead`));
    for (const file of ['README.md', 'config/spillway.example.yaml', 'systemd/spillway.service', 'docs/CONFIG.md']) {
      assert.doesNotMatch(await read(file), /~160 bytes|160 B each/, file);
    }
  });

  it("the unit's watchdog comment quotes health.stallSeconds' default", async () => {
    const unit = await read('systemd/spillway.service');
    assert.match(unit, new RegExp(`health\\.stallSeconds \\(default ${parseConfig({}).health.stallSeconds} s\\)`));
  });

  it('the commented example shows the defaults, except the streams: entry it marks as an example', async () => {
    const text = await read('config/spillway.example.yaml');
    assert.match(text, /^# spillway configuration\. Every key is optional: what is shown is the default,\n# except the entry under `streams:`/);
    const example = parseConfigText(text);
    const { streams, ...rest } = example;
    const { streams: none, ...defaults } = parseConfig({});
    assert.deepEqual(none, {});
    assert.ok(Object.keys(streams).length > 0);
    assert.deepEqual(rest, defaults);
  });

  it('points at no protocol document outside the repo (docs/PROTOCOL.md is the contract)', async () => {
    // Must stay empty: every file cites docs/PROTOCOL.md.
    const pending = new Set<string>([]);
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (['node_modules', 'dist', '.git', 'var'].includes(e.name)) continue;
        const path = join(dir, e.name);
        if (e.isDirectory()) await walk(path);
        else if (/\.(ts|md|yaml|json|service|sh)$|^run$/.test(e.name)) files.push(relative(ROOT, path));
      }
    };
    await walk(ROOT);
    const citing: string[] = [];
    for (const f of files) if (/spec\/PROTOCOL\.md/.test(await read(f)) && f !== 'test/docs-drift.test.ts') citing.push(f);
    assert.deepEqual(citing.filter((f) => !pending.has(f)), []);
    assert.deepEqual([...pending].filter((f) => !citing.includes(f)), [], 'fixed: remove it from the pending list');
    assert.match(await read('docs/PROTOCOL.md'), /^# spillway consumer protocol, version 1\n\nThis page is the whole contract/);
  });
});
