/**
 * Source log lines an operator reads in the journal: a broker that stays
 * away is one `source_error` line per failed attempt, numbered, and one
 * WARN per failure streak (each further attempt at debug), and a line names its source once (no repeated `source` key).
 * The daemon as a child process, at log level debug, with an MQTT source on
 * a closed loopback port and a serial port whose device does not exist.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDaemon, testConfig, type DaemonProcess } from './helpers/daemon.js';
import { freePort } from './helpers/ports.js';

describe('source log lines', () => {
  let daemon: DaemonProcess;

  before(async () => {
    const port = await freePort();
    daemon = await startDaemon(
      testConfig({
        log: { level: 'debug' },
        sources: {
          mqtt: [{ name: 'broker', url: `mqtt://127.0.0.1:${port}`, reconnect: { initialMs: 20, maxMs: 40 }, subscriptions: [{ topic: 'sensors/#', qos: 1 }] }],
          serial: [{ name: 'gps', path: '/dev/spillway-test-no-such-device', reconnect: { initialMs: 20, maxMs: 40 } }],
        },
      }),
    );
  });

  after(async () => {
    await daemon?.stop();
  });

  it('logs one WARN source_error per failure streak, the repeats at debug', async () => {
    await daemon.waitForLog(() => daemon.logs.filter((l) => l.event === 'source_error' && l['source'] === 'broker').length >= 4, 'four failed connection attempts');
    const errors = daemon.logs.filter((l) => l.event === 'source_error' && l['source'] === 'broker');
    assert.equal(errors.filter((l) => l.level === 40).length, 1, JSON.stringify(errors.slice(0, 4)));
    assert.ok(errors.slice(1).every((l) => l.level === 20));
    assert.deepEqual(errors.map((l) => l['attempt']), errors.map((_l, i) => i + 1), 'one line per failed attempt, none twice');
  });

  it('names the source once in each line', async () => {
    await daemon.waitForLog((l) => l.event === 'source_degraded' && l['source'] === 'gps', 'the serial source_degraded line');
    const lines = daemon.rawLogs.filter((l) => /"event":"source_(degraded|error)"/.test(l));
    assert.ok(lines.length >= 2);
    for (const line of lines) assert.equal(line.match(/"source":/g)?.length, 1, line);
  });
});
