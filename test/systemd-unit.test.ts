/**
 * systemd/spillway.service as systemd reads it: `systemd-analyze verify`
 * finds nothing to say, the sandbox scores an overall exposure of at most
 * 2.0 (`systemd-analyze security --offline=true`), and the limits agree with
 * the config's defaults (drain deadline, memory budget). scripts/install.sh
 * parses and plans an install without changing anything (--dry-run).
 * Needs systemd-analyze (not a running systemd): fails loudly without it.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig } from '../config/load.js';
import { makeTempDir } from './helpers/tmp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const UNIT = join(ROOT, 'systemd', 'spillway.service');
const INSTALL = join(ROOT, 'scripts', 'install.sh');
const MiB = 1_048_576;

const exec = promisify(execFile);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(cmd: string, args: readonly string[]): Promise<Run> {
  return exec(cmd, args, { maxBuffer: 4 * MiB }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code?: number | string; stdout?: string; stderr?: string; message: string }) => {
      if (typeof err.code !== 'number') throw new Error(`${cmd} could not run: ${err.message}`);
      return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    },
  );
}

function requireTool(tool: string, hint: string): void {
  const probe = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) throw new Error(`${tool} is required for this test (${hint}): ${probe.error?.message ?? probe.stderr}`);
}

/** Every `Key=value` of the [Service] section, in order (a key may repeat). */
function serviceSettings(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    const at = line.indexOf('=');
    if (section === 'Service' && at > 0) out.push([line.slice(0, at), line.slice(at + 1)]);
  }
  return out;
}

function one(settings: Array<[string, string]>, key: string): string {
  const all = settings.filter(([k]) => k === key);
  assert.equal(all.length, 1, `${key}= appears once in [Service]`);
  return (all[0] as [string, string])[1];
}

/** systemd time span ("30s", "1min 30s", "500ms", "30") in ms; enough of systemd.time(7) for this unit. */
function spanMs(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1_000, sec: 1_000, min: 60_000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const part of text.trim().split(/\s+/)) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(part);
    assert.ok(m, `time span ${text}`);
    const unit = m[2] === '' ? 's' : (m[2] as string);
    assert.ok(unit in units, `time unit ${unit} in ${text}`);
    total += Number(m[1]) * (units[unit] as number);
  }
  return total;
}

/** "320M" -> bytes (systemd's K/M/G are powers of 1024). */
function bytes(text: string): number {
  const m = /^(\d+)([KMG]?)$/.exec(text.trim());
  assert.ok(m, `byte size ${text}`);
  return Number(m[1]) * ({ '': 1, K: 1024, M: MiB, G: 1024 * MiB }[m[2] as string] as number);
}

describe('systemd unit', () => {
  let dir: string;
  let copy: string;
  let text: string;

  before(async () => {
    requireTool('systemd-analyze', 'apt-get install systemd');
    text = await readFile(UNIT, 'utf8');
    dir = await makeTempDir('unit');
    // verify checks that ExecStart's binary exists and is executable: point it at this node.
    copy = join(dir, 'spillway.service');
    await writeFile(copy, text.replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `));
  });

  it('systemd-analyze verify has nothing to say about it', async () => {
    assert.ok(existsSync(process.execPath));
    const r = await run('systemd-analyze', ['verify', copy]);
    const about = r.stderr.split('\n').filter((l) => l.includes('spillway.service'));
    assert.deepEqual(about, [], `verify warned:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
  });

  it('the sandbox scores an overall exposure of at most 2.0', async () => {
    const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', copy]);
    assert.equal(r.code, 0, r.stderr);
    const m = /Overall exposure level for spillway\.service: (\d+\.\d+)/.exec(r.stdout);
    assert.ok(m, `no overall exposure line in:\n${r.stdout}`);
    const score = Number(m[1]);
    assert.ok(score <= 2.0, `exposure ${score} > 2.0:\n${r.stdout.split('\n').filter((l) => l.includes('✗')).join('\n')}`);
  });

  it('runs compiled node with a heap limit, as spillway in dialout, under Type=notify with a watchdog', () => {
    const s = serviceSettings(text);
    assert.match(one(s, 'ExecStart'), /^\/usr\/bin\/node --max-semi-space-size=\d+ --max-old-space-size=\d+ \/opt\/spillway\/dist\/daemon\/cli\.js run --config \/etc\/spillway\/spillway\.yaml$/);
    assert.equal(one(s, 'Type'), 'notify');
    assert.equal(one(s, 'NotifyAccess'), 'all', 'sd-notify.ts sends from systemd-notify children');
    assert.ok(spanMs(one(s, 'WatchdogSec')) >= 10_000, 'a watchdog period a Pi under load can keep');
    assert.equal(one(s, 'User'), 'spillway');
    assert.equal(one(s, 'SupplementaryGroups'), 'dialout');
    assert.equal(one(s, 'StateDirectory'), 'spillway');
    assert.equal(one(s, 'ConfigurationDirectory'), 'spillway');
    assert.equal(one(s, 'RestartPreventExitStatus'), '78');
    assert.equal(one(s, 'Restart'), 'on-failure');
    assert.equal(one(s, 'DevicePolicy'), 'closed');
    const devices = s.filter(([k]) => k === 'DeviceAllow').map(([, v]) => v);
    for (const d of ['char-ttyUSB rw', 'char-ttyACM rw', 'char-ttyAMA rw']) assert.ok(devices.includes(d), `DeviceAllow=${d}`);
    assert.equal(one(s, 'RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX');
    assert.equal(s.filter(([k]) => k === 'MemoryDenyWriteExecute').length, 0, 'MemoryDenyWriteExecute breaks the JIT');
  });

  it('the stop timeout outlasts the drain deadline, and the memory limits fit the default budget', () => {
    const s = serviceSettings(text);
    const defaults = parseConfig({});
    assert.ok(spanMs(one(s, 'TimeoutStopSec')) >= defaults.shutdown.drainTimeoutMs + 10_000, 'drain, then time to write what is owed to the spool');
    // The arithmetic of the unit's comment: old space = 2 x (32 MiB + budget), young = 3 x semi-space,
    // MemoryMax >= 60 + old + young + budget + 16 (MiB).
    const budget = defaults.limits.memoryBudgetBytes / MiB;
    const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(one(s, 'ExecStart'))?.[1]);
    assert.ok(oldSpace >= 2 * (32 + budget), `--max-old-space-size=${oldSpace} < 2 x (32 + ${budget})`);
    const semiSpace = Number(/--max-semi-space-size=(\d+)/.exec(one(s, 'ExecStart'))?.[1]);
    assert.ok(semiSpace >= 1 && semiSpace <= 8, `--max-semi-space-size=${semiSpace}: below node's 16 MiB default (most of the peak RSS), not below 1`);
    const memoryMax = bytes(one(s, 'MemoryMax')) / MiB;
    assert.ok(memoryMax >= 60 + oldSpace + 3 * semiSpace + budget + 16, `MemoryMax ${memoryMax} MiB leaves the heap no room`);
  });
});

describe('scripts/install.sh', () => {
  it('parses (bash -n)', async () => {
    const r = await run('bash', ['-n', INSTALL]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('--dry-run plans every step and changes nothing', async () => {
    const paths = ['/opt/spillway.new', '/etc/spillway', '/opt/spillway', '/usr/local/bin/spillway'];
    const before = paths.map((p) => existsSync(p));
    const r = await run('bash', [INSTALL, '--dry-run']);
    // A host without Node 20 at /usr/bin/node (say) gets the whole plan, the errors listed, and exit 1.
    if (r.code !== 0) assert.match(r.stderr, /error\(s\) above would stop a real run/, `exit ${r.code}:\n${r.stderr}`);
    for (const step of ['== system user spillway (in dialout)', '== package in /opt/spillway', '== config /etc/spillway/spillway.yaml', '== command /usr/local/bin/spillway', '== unit /etc/systemd/system/spillway.service', '== service']) {
      assert.ok(r.stdout.includes(step), `step ${step}:\n${r.stdout}`);
    }
    assert.match(r.stdout, /check-config \/etc\/spillway\/spillway\.yaml/);
    assert.match(r.stdout, /systemctl enable/);
    assert.match(r.stdout, /exec \/usr\/bin\/node \/opt\/spillway\/dist\/daemon\/cli\.js "\$@"/, 'the wrapper runs the installed cli with the unit\'s node');
    assert.deepEqual(paths.map((p) => existsSync(p)), before, 'a dry run creates nothing');
  });

  it('refuses an unknown argument with exit 64 and the usage', async () => {
    const r = await run('bash', [INSTALL, '--frobnicate']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /unknown argument --frobnicate/);
    assert.match(r.stderr, /--dry-run/);
  });
});
