import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { streamName, topicMatches } from './topic.js';

describe('topic filters', () => {
  it('matches + and # as MQTT does', () => {
    assert.ok(topicMatches('sensors/#', 'sensors/a/b'));
    assert.ok(topicMatches('sensors/#', 'sensors'));
    assert.ok(topicMatches('sensors/+/temp', 'sensors/kitchen/temp'));
    assert.ok(!topicMatches('sensors/+/temp', 'sensors/kitchen/hum'));
    assert.ok(!topicMatches('sensors/+', 'sensors/a/b'));
    assert.ok(!topicMatches('#', '$SYS/broker/uptime'));
    assert.ok(topicMatches('a/b', 'a/b'));
    assert.ok(!topicMatches('a/b', 'a/b/c'));
  });

  it('names streams from templates', () => {
    assert.equal(streamName('{topic}', 'sensors/a'), 'sensors/a');
    assert.equal(streamName('temp-{1}', 'sensors/kitchen/temp'), 'temp-kitchen');
    assert.equal(streamName('x-{9}', 'a/b'), 'x-');
  });
});
