import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TopicTemplate } from './topic-template.js';

describe('TopicTemplate', () => {
  it('replaces {stream} and {prio}, every occurrence', () => {
    const t = new TopicTemplate('site/{prio}/{stream}/{stream}');
    assert.equal(t.topicFor('sensors/gps', 0), 'site/0/sensors/gps/sensors/gps');
  });

  it('never makes a topic with a wildcard', () => {
    const t = new TopicTemplate('up/{stream}');
    assert.equal(t.topicFor('a+b#c', 1), 'up/a_b_c');
  });
});
