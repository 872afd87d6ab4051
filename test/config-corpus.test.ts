/**
 * The invalid-config corpus: every file in test/fixtures/config/ is refused,
 * through `loadConfigFile` and through the real CLI (`spillway check-config
 * FILE`: exit 78, the problems on stderr), with exactly the problems its
 * `# expect:` header lines name, in order.
 *
 * Header lines: `# expect: PROBLEM` (one per problem), `# mode: 0NNN` (the
 * file's mode; default 0600), `# run: 78` (`spillway run --config FILE`
 * refuses it too, with exit 78 and before it creates or opens anything in
 * dataDir), `# file: NAME: TEXT` (a file written next to the config, one line of
 * TEXT). In PROBLEM, `{file}` stands for the file's path, `{dir}` for
 * its directory (also the working directory of the check), and `{allowed:PATH}` for the keys the schema allows at PATH (so a
 * key added to a section does not rewrite unrelated fixtures). Fixtures are
 * copied into a private temp dir first: the checkout's modes and the umask
 * do not matter. They are not compiled: dist/test/ finds them at
 * ../../test/fixtures/config.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../config/load.js';
import { allowedKeysAt } from '../config/schema-walk.js';
import { ConfigError } from '../daemon/errors.js';
import { CLI } from './helpers/daemon.js';
import { makeTempDir } from './helpers/tmp.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'config');
const EXIT_CONFIG = 78;

interface Fixture {
  readonly name: string;
  readonly bytes: Buffer;
  readonly mode: number;
  readonly expect: readonly string[];
  readonly run: boolean;
  /** Files written next to the config: name → content. */
  readonly files: ReadonlyArray<readonly [string, string]>;
}

async function loadFixtures(): Promise<Fixture[]> {
  const names = (await readdir(FIXTURES)).filter((n) => n.endsWith('.yaml')).sort();
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(join(FIXTURES, name));
      const header = bytes.toString('latin1').split('\n').filter((l) => l.startsWith('# '));
      const expect = header.filter((l) => l.startsWith('# expect: ')).map((l) => Buffer.from(l.slice('# expect: '.length), 'latin1').toString('utf8'));
      const mode = header.find((l) => l.startsWith('# mode: '))?.slice('# mode: '.length);
      const files = header
        .filter((l) => l.startsWith('# file: '))
        .map((l) => /^# file: ([^:]+): (.*)$/.exec(l)?.slice(1, 3) as [string, string]);
      return { name, bytes, mode: mode === undefined ? 0o600 : parseInt(mode, 8), expect, run: header.includes('# run: 78'), files };
    }),
  );
}

function expected(f: Fixture, file: string): string[] {
  return f.expect.map((line) =>
    line.replaceAll('{file}', file).replaceAll('{dir}', dirname(file)).replace(/\{allowed:([^}]*)\}/g, (_m, path: string) => allowedKeysAt(path === '' ? [] : path.split('.'), {}).keys.join(', ')),
  );
}

function checkConfig(file: string, cwd: string, command: 'check-config' | 'run' = 'check-config'): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = command === 'run' ? ['run', '--config', file] : ['check-config', file];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const fixtures = await loadFixtures();
let dir = '';

// Each fixture spawns the CLI once; as many at a time as there are cores.
describe('invalid config corpus', { concurrency: Math.max(2, availableParallelism()) }, () => {
  before(async () => {
    dir = await makeTempDir('corpus');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds at least 30 fixtures, each naming what it expects, some of them run too', () => {
    assert.ok(fixtures.length >= 30, `${fixtures.length} fixtures`);
    assert.ok(fixtures.filter((f) => f.run).length >= 7, 'fixtures with # run: 78');
    for (const f of fixtures) assert.ok(f.expect.length > 0, `${f.name} has no "# expect:" line`);
  });

  for (const f of fixtures) {
    it(f.name, async () => {
      const sub = await mkdtemp(join(dir, `${f.name.replace(/\.yaml$/, '')}-`));
      const file = join(sub, f.name);
      await writeFile(file, f.bytes, { mode: 0o600 });
      await chmod(file, f.mode);
      for (const [name, text] of f.files) await writeFile(join(sub, name), `${text}\n`, { mode: 0o644 });
      const want = expected(f, file);

      await assert.rejects(loadConfigFile(file, { cwd: sub }), (err: unknown) => {
        assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
        assert.deepEqual(err.problems, want);
        return true;
      });

      const cli = await checkConfig(file, sub);
      assert.equal(cli.code, EXIT_CONFIG, `exit code; stderr: ${cli.stderr}`);
      assert.equal(cli.stdout, '');
      const [first, ...rest] = cli.stderr.trimEnd().split('\n');
      assert.equal(first, `${file}: invalid config:`);
      assert.deepEqual(
        rest.map((l) => l.replace(/^ {2}/, '')),
        want,
      );

      if (f.run) {
        const run = await checkConfig(file, sub, 'run');
        assert.equal(run.code, EXIT_CONFIG, `run's exit code; stdout: ${run.stdout}`);
        const fatal = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { event?: string; problems?: string[] };
        assert.equal(fatal.event, 'config_invalid');
        assert.deepEqual(fatal.problems, want);
        // Refused before anything was opened: no dataDir (./var by default), so no spool and no seq file.
        assert.deepEqual((await readdir(sub)).sort(), [f.name, ...f.files.map(([name]) => name)].sort());
      }
    });
  }
});
