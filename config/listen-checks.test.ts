import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkListeners } from './listen-checks.js';
import type { Config } from './schema.js';

/** The three listeners at host:port each (admin last); the problems found. */
function check(broker: [string, number], listen: [string, number], admin: [string, number]): string[] {
  const at = ([host, port]: [string, number]) => ({ enabled: true, host, port });
  return checkListeners({ sources: { embeddedBroker: at(broker) }, consumers: { listen: at(listen) }, admin: at(admin) } as unknown as Config);
}

describe('checkListeners', () => {
  it('refuses two listeners sure to clash: the same host, or a wildcard over the other', () => {
    assert.deepEqual(check(['127.0.0.1', 1883], ['127.0.0.1', 1883], ['127.0.0.1', 7421]), [
      'consumers.listen.port: 1883 is not allowed: sources.embeddedBroker listens on 127.0.0.1:1883 already; expected a port of its own',
    ]);
    assert.equal(check(['LocalHost', 1], ['localhost', 1], ['127.0.0.1', 2]).length, 1, 'host names without regard to case');
    assert.equal(check(['[::1]', 1], ['::1', 1], ['127.0.0.1', 2]).length, 1, 'IPv6 with and without brackets');
    assert.equal(check(['0.0.0.0', 1], ['10.0.0.5', 1], ['127.0.0.1', 2]).length, 1, '0.0.0.0 takes every IPv4 address');
    assert.deepEqual(check(['0:0:0:0:0:0:0:0', 1], ['127.0.0.1', 1], ['::1', 1]), [
      'consumers.listen.port: 1 is not allowed: sources.embeddedBroker listens on [0:0:0:0:0:0:0:0]:1 already; expected a port of its own',
      'admin.port: 1 is not allowed: sources.embeddedBroker listens on [0:0:0:0:0:0:0:0]:1 already; expected a port of its own',
    ]);
  });

  it('lets be what binds, or may: other ports, port 0, other addresses, 0.0.0.0 beside IPv6, localhost beside an address', () => {
    assert.deepEqual(check(['127.0.0.1', 1883], ['127.0.0.1', 7420], ['127.0.0.1', 7421]), []);
    assert.deepEqual(check(['127.0.0.1', 0], ['127.0.0.1', 0], ['127.0.0.1', 0]), [], 'port 0: the system picks one each');
    assert.deepEqual(check(['127.0.0.1', 1], ['10.0.0.5', 1], ['::1', 1]), []);
    assert.deepEqual(check(['0.0.0.0', 1], ['::1', 1], ['127.0.0.1', 2]), [], '0.0.0.0 is IPv4 only');
    assert.deepEqual(check(['localhost', 1], ['127.0.0.1', 1], ['::1', 1]), [], 'localhost may resolve to either: left to the start');
  });
});
