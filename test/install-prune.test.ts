/**
 * The production install, pruned (scripts/prune-modules.ts, run by
 * scripts/install.sh after `npm ci --omit=dev`): it stays under 30 MB and the
 * daemon still runs from it with every runtime package loaded (YAML config,
 * SQLite spool, embedded broker, MQTT source and upstream, a serial port on
 * a socat pty, WebSocket and admin listeners).
 *
 * The production tree is this checkout's node_modules copied and pruned with
 * `npm prune --omit=dev --offline`: the same packages as `npm ci --omit=dev`
 * (checked by hand: same package.json files, same size to 70 bytes) without a
 * network or the minutes better-sqlite3 takes to compile.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, realpathSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { pruneModules } from '../scripts/prune-modules.js';
import { startDaemon, type DaemonProcess } from './helpers/daemon.js';
import { freePort } from './helpers/ports.js';
import { closePeer, openPeer, ptyLinks, removePtyDir, startSocat, writeAll, type PtyLinks, type Socat } from './helpers/pty.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
/** dist/test -> the checkout. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_BYTES = 30e6;

function bytes(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((a, e) => a + bytes(join(path, e)), 0);
}

describe('the pruned production install', () => {
  let dir: string;
  let links: PtyLinks | undefined;
  let socat: Socat | undefined;
  let daemon: DaemonProcess | undefined;
  let before_ = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spillway-prune-'));
    for (const f of ['package.json', 'package-lock.json']) await cp(join(ROOT, f), join(dir, f));
    // The real directory, never a link to it: npm prune below must not reach the checkout's own modules.
    await run('cp', ['-a', `${realpathSync(join(ROOT, 'node_modules'))}/.`, join(dir, 'node_modules')]);
    await run('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: dir });
    before_ = bytes(join(dir, 'node_modules'));
    // As install.sh stages it: dist/{daemon,drivers,config} without tests.
    for (const sub of ['daemon', 'drivers', 'config']) {
      await cp(join(ROOT, 'dist', sub), join(dir, 'dist', sub), { recursive: true, filter: (src) => !/\.test\.js(\.map)?$/.test(src) });
    }
  });

  after(async () => {
    if (daemon !== undefined && daemon.child.exitCode === null) await daemon.stop('SIGKILL');
    await socat?.stop();
    if (links !== undefined) await removePtyDir(links);
    await rm(dir, { recursive: true, force: true });
  });

  it('drops build leftovers, install-only packages and what no runtime loads, to under 30 MB', () => {
    const report = pruneModules(dir);
    const after_ = bytes(join(dir, 'node_modules'));
    const nm = (p: string) => join(dir, 'node_modules', p);
    assert.deepEqual(readdirSync(nm('better-sqlite3')).sort(), ['LICENSE', 'build', 'lib', 'package.json']);
    assert.deepEqual(readdirSync(nm('better-sqlite3/build/Release')), ['better_sqlite3.node']);
    for (const gone of ['prebuild-install', 'node-addon-api', '@types', 'mqtt/dist', 'zod/src']) assert.equal(existsSync(nm(gone)), false, `${gone} removed`);
    assert.deepEqual(readdirSync(nm('@serialport/bindings-cpp/prebuilds')), [`${process.platform}-${process.arch}`]);
    assert.ok(report.packagesRemoved.includes('prebuild-install'));
    assert.ok(after_ <= MAX_BYTES, `node_modules ${(after_ / 1e6).toFixed(1)} MB after pruning (was ${(before_ / 1e6).toFixed(1)} MB), at most 30 MB`);
    assert.equal(before_ - after_, report.removedBytes, 'the report counts what went');
  });

  it('the daemon runs from the pruned tree: check-config, then records from MQTT and a serial port reach the upstream; /metrics tells its memory', async () => {
    const cli = join(dir, 'dist', 'daemon', 'cli.js');
    const port = await freePort();
    links = await ptyLinks();
    socat = await startSocat(links);
    const config = {
      log: { level: 'info' },
      sources: {
        embeddedBroker: { enabled: true, host: '127.0.0.1', port, subscriptions: [{ topic: 'sensors/#', stream: 'm' }] },
        serial: [{ name: 'tty', path: links.device, framing: { type: 'lines' } }],
      },
      upstreams: { mqtt: [{ url: `mqtt://127.0.0.1:${port}` }] },
      consumers: { listen: { port: 0 } },
      admin: { port: 0 },
    };
    const file = join(dir, 'check.yaml');
    await writeFile(file, `dataDir: ${join(dir, 'check-var')}\n`);
    await run(process.execPath, [cli, 'check-config', file]);
    daemon = await startDaemon(config, { cli });
    const d = daemon;
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `prune-pub-${process.pid}` });
    await pub.publishAsync('sensors/t', 'from mqtt', { qos: 1 });
    await pub.endAsync();
    const peer = await openPeer(links.peer);
    await writeAll(peer, 'from serial\n');
    await closePeer(peer);
    await waitFor(async () => (await d.metrics()).sum('spillway_records_acked_total') === 2 || undefined, 'both records PUBACKed by the upstream');
    // /metrics tells the process's memory as /proc does (the daemon is quiet now: RSS moves little between the two reads).
    const m = await d.metrics();
    const status = await readFile(`/proc/${d.child.pid as number}/status`, 'utf8');
    const vmRss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) * 1024;
    const rss = m.sum('spillway_process_resident_memory_bytes');
    assert.ok(Math.abs(rss - vmRss) < vmRss * 0.2, `spillway_process_resident_memory_bytes ${rss} vs VmRSS ${vmRss}`);
    assert.ok(m.sum('spillway_process_heap_used_bytes') > 0 && m.sum('spillway_process_heap_used_bytes') <= m.sum('spillway_process_heap_total_bytes'));
    assert.ok(m.sum('spillway_process_external_memory_bytes') > 0);
    assert.equal(await d.stop(), 0);
  });
});
