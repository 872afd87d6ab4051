/**
 * What `loadConfigFile` refuses before a config's content is used, beyond
 * the fixture corpus: files that are not regular files, too large, in a
 * directory others can write; a dataDir that exists and others can write;
 * and where a relative dataDir points. Plus: a hostile document leaves
 * Object.prototype alone, and a flood of problems is capped.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatValue } from '../config/describe-issue.js';
import { loadConfigFile, MAX_CONFIG_BYTES, MAX_PROBLEMS, parseConfig, parseConfigText } from '../config/load.js';
import { ConfigError, SpillwayError } from '../daemon/errors.js';
import { CLI } from './helpers/daemon.js';
import { makeTempDir } from './helpers/tmp.js';

let dir = '';

async function file(name: string, text: string | Buffer, mode = 0o600): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode });
  await chmod(path, mode);
  return path;
}

function problemsOf(err: unknown): readonly string[] {
  assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
  return err.problems;
}

describe('config file hardening', () => {
  before(async () => {
    dir = await makeTempDir('cfg-hard');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a file only its owner can write (0600, 0644, 0640)', async () => {
    for (const mode of [0o600, 0o644, 0o640]) {
      const c = await loadConfigFile(await file(`ok-${mode.toString(8)}.yaml`, 'log:\n  level: warn\n', mode));
      assert.equal(c.log.level, 'warn');
    }
  });

  it('refuses a file larger than MAX_CONFIG_BYTES with its size', async () => {
    const path = await file('huge.yaml', `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    await assert.rejects(loadConfigFile(path), (err) => {
      assert.deepEqual(problemsOf(err), [`${path}: ${MAX_CONFIG_BYTES + 3} bytes is too large (at most ${MAX_CONFIG_BYTES})`]);
      return true;
    });
  });

  it('refuses a directory and a FIFO (without waiting for a writer)', async () => {
    const sub = join(dir, 'a-dir.yaml');
    await mkdir(sub);
    await assert.rejects(loadConfigFile(sub), (err) => {
      assert.deepEqual(problemsOf(err), [`${sub}: a directory is not allowed: expected a regular file`]);
      return true;
    });
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const t0 = Date.now();
    await assert.rejects(loadConfigFile(fifo), (err) => {
      assert.deepEqual(problemsOf(err), [`${fifo}: a FIFO is not allowed: expected a regular file`]);
      return true;
    });
    assert.ok(Date.now() - t0 < 2_000, 'did not block on the FIFO');
    // The CLI too: exit 78 at once.
    const code = await new Promise<number | null>((resolve) => execFile(process.execPath, [CLI, 'check-config', fifo], { timeout: 10_000 }, (e) => resolve(e === null ? 0 : (e.code as number))));
    assert.equal(code, 78);
  });

  it('reports a missing file as CONFIG_READ', async () => {
    await assert.rejects(loadConfigFile(join(dir, 'nope.yaml')), (err) => {
      assert.ok(err instanceof SpillwayError && err.code === 'CONFIG_READ');
      assert.match(err.message, /cannot read config .*nope\.yaml: ENOENT/);
      return true;
    });
  });

  it('refuses a file in a directory others can write, unless the directory is sticky', async () => {
    const open = join(dir, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    const path = join(open, 'c.yaml');
    await writeFile(path, 'log:\n  level: info\n', { mode: 0o600 });
    await assert.rejects(loadConfigFile(path), (err) => {
      assert.deepEqual(problemsOf(err), [`${path}: its directory ${open} (mode 0777) lets others replace it, which is not allowed: expected a directory others cannot write, or one with the sticky bit`]);
      return true;
    });
    await chmod(open, 0o1777);
    assert.equal((await loadConfigFile(path)).log.level, 'info');
  });

  it('resolves a relative dataDir against the working directory, and keeps an absolute one', async () => {
    const path = await file('rel.yaml', 'dataDir: state/spool\n');
    assert.equal((await loadConfigFile(path, { cwd: '/srv/spillway' })).dataDir, '/srv/spillway/state/spool');
    assert.equal((await loadConfigFile(path)).dataDir, join(process.cwd(), 'state/spool'));
    const abs = await file('abs.yaml', `dataDir: ${join(dir, 'var')}\n`);
    assert.equal((await loadConfigFile(abs, { cwd: '/elsewhere' })).dataDir, join(dir, 'var'));
    // Without a file (or a cwd), parsing is pure and leaves it as written.
    assert.equal(parseConfig({}).dataDir, './var');
  });

  it('refuses a relative dataDir that resolves to a system directory, showing where it points', async () => {
    const path = await file('up.yaml', 'dataDir: ../..\n');
    await assert.rejects(loadConfigFile(path, { cwd: '/var/lib' }), (err) => {
      assert.deepEqual(problemsOf(err), [`dataDir: "../.." (/) is not allowed: expected a directory of spillway's own, such as /var/lib/spillway (the daemon creates, renames and deletes files in it)`]);
      return true;
    });
  });

  it('refuses an existing dataDir that others can write, or that is not a directory', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o1777);
    const path = await file('shared.yaml', `dataDir: ${shared}\n`);
    await assert.rejects(loadConfigFile(path), (err) => {
      assert.deepEqual(problemsOf(err), [`dataDir: ${formatValue(shared)} is not allowed: its mode 01777 lets others write in it; expected a directory only spillway's user and group can write`]);
      return true;
    });
    const plain = await file('plain-file', 'x');
    const path2 = await file('notdir.yaml', `dataDir: ${plain}\n`);
    await assert.rejects(loadConfigFile(path2), (err) => {
      assert.deepEqual(problemsOf(err), [`dataDir: ${formatValue(plain)} is not allowed: it is a regular file; expected a directory`]);
      return true;
    });
  });

  it('leaves Object.prototype alone whatever the document says', () => {
    for (const text of ['__proto__: {polluted: 1}\n', 'streams:\n  __proto__: {polluted: 1}\n', 'limits:\n  reservedShares:\n    __proto__: {polluted: 1}\n', '{"constructor": {"prototype": {"polluted": 1}}}\n']) {
      assert.throws(() => parseConfigText(text), ConfigError);
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined, text);
      assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
    }
  });

  it('caps a flood of problems at MAX_PROBLEMS and counts the rest', () => {
    const text = Array.from({ length: MAX_PROBLEMS + 25 }, (_, i) => `junk${i}: 1`).join('\n');
    assert.throws(
      () => parseConfigText(text),
      (err: unknown) => {
        const problems = problemsOf(err);
        assert.equal(problems.length, MAX_PROBLEMS + 1);
        assert.equal(problems[MAX_PROBLEMS], '(and 25 more problems)');
        return true;
      },
    );
  });

  it('lists a file path key with control characters (certificates, keys)', () => {
    assert.deepEqual(
      (() => {
        try {
          parseConfig({ sources: { mqtt: [{ url: 'mqtts://b', tls: { ca: '/etc/ca\n.pem' } }] } });
          return [];
        } catch (err) {
          return problemsOf(err).filter((p) => p.includes('tls'));
        }
      })(),
      ['sources.mqtt[0].tls.ca: "/etc/ca\\n.pem" is not allowed: expected a file path without control characters'],
    );
  });
});
