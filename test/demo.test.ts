/**
 * `npm run demo` shows what it says (README): run for real, on free ports,
 * its three phases of 5 s read from its live lines:
 *   - block: the sensors' acknowledged rate falls from the 2,000/s they try
 *     to the slow consumer's ~500/s (backpressure reaches the sensor);
 *   - spill: while the consumer is away the spool fills, and once it is back
 *     the spool drains;
 *   - priority: records are dropped, and never an alarm (priority 0);
 * and it ends with the conservation identity balanced and exit code 0.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from './helpers/ports.js';

const DEMO = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'demo.js');

interface Line {
  readonly phase: string;
  readonly sensors: number;
  readonly acked: number;
  readonly spooled: number;
  readonly dropped: number;
  readonly alarmDropped: number;
  readonly consumer: string;
}

const LIVE = /^\s*\d+s (block|spill|priority)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(slow|away|fast)$/;

it('npm run demo: block slows the sensors, spill fills and drains the spool, priority drops no alarm; it balances', async () => {
  const [broker, consumers, admin] = [await freePort(), await freePort(), await freePort()];
  const args = [DEMO, '--seconds', '15', '--broker-port', String(broker), '--consumer-port', String(consumers), '--admin-port', String(admin)];
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(process.execPath, args, { timeout: 90_000 }, (err, out) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stdout: out }));
  });
  assert.equal(code, 0, stdout);
  const lines: Line[] = stdout.split('\n').flatMap((l) => {
    const m = LIVE.exec(l);
    if (m === null) return [];
    const n = (i: number) => Number(m[i]);
    return [{ phase: m[1] as string, sensors: n(2), acked: n(4), spooled: n(6), dropped: n(7), alarmDropped: n(8), consumer: m[9] as string }];
  });
  const of = (phase: string) => lines.filter((l) => l.phase === phase);
  assert.ok(of('block').length >= 3 && of('spill').length >= 3 && of('priority').length >= 3, `three phases of live lines:\n${stdout}`);

  // Block: once the rings of 500 are full, the sensors get PUBACKs only as fast as the consumer acks.
  const blocked = of('block').slice(-2);
  assert.ok(blocked.every((l) => l.sensors < 1_000), `the sensors slowed below half of the 2,000/s they try: ${JSON.stringify(blocked)}`);

  // Spill: the spool fills while the consumer is away and drains once it is back.
  const spill = of('spill');
  const peak = Math.max(...spill.map((l) => l.spooled));
  const peakAt = spill.findIndex((l) => l.spooled === peak);
  assert.ok(peak > 0 && spill.some((l) => l.consumer === 'away'), `records spilled while the consumer was away: ${JSON.stringify(spill)}`);
  assert.ok(Math.min(...spill.slice(peakAt).map((l) => l.spooled)) < peak, `the spool drained once it was back: ${JSON.stringify(spill)}`);

  // Priority: the small budget drops routine records, never an alarm.
  const priority = of('priority');
  assert.ok((priority.at(-1) as Line).dropped > (priority[0] as Line).dropped, `records dropped in the priority phase: ${JSON.stringify(priority)}`);
  assert.ok(lines.every((l) => l.alarmDropped === 0), 'no alarm dropped, ever');

  assert.match(stdout, /^summary: recovered \d+ \+ ingested \d+ = acked \d+ \+ dropped \d+ \+ buffered \d+ \+ spooled \d+ \+ inflight \d+ {2}balances; alarms dropped: 0$/m);
  assert.match(stdout, /the daemon exited with code 0\.$/m);
});

/** Runs the demo to its end; returns its exit code and stderr. */
async function demo(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEMO, ...args], { timeout: 60_000 }, (err, _out, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stderr }));
  });
}

it('npm run demo on a port the daemon refuses shows the refusal, and no question about other programs on the ports', async () => {
  const [consumers, admin] = [await freePort(), await freePort()];
  const { code, stderr } = await demo(['--broker-port', '70000', '--consumer-port', String(consumers), '--admin-port', String(admin)]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /the daemon exited with code 78 before it was ready/);
  assert.match(stderr, /70000/, 'the bad value is named');
  assert.doesNotMatch(stderr, /Is another spillway/);
});

it('npm run demo on a port another program holds asks whether one is running', async () => {
  const held = createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  try {
    const broker = (held.address() as AddressInfo).port;
    const [consumers, admin] = [await freePort(), await freePort()];
    const { code, stderr } = await demo(['--broker-port', String(broker), '--consumer-port', String(consumers), '--admin-port', String(admin)]);
    assert.equal(code, 1, stderr);
    assert.doesNotMatch(stderr, /code 78/);
    assert.match(stderr, new RegExp(`Is another spillway \\(or an MQTT broker\\) using 127\\.0\\.0\\.1:${broker}`));
  } finally {
    await new Promise((resolve) => held.close(resolve));
  }
});
