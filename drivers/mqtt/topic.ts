/**
 * MQTT topic filters and stream-name templates.
 *
 * A template names the stream of a message from its topic: `{topic}` is the
 * whole topic, `{N}` its N-th level counting from 0 (`sensors/+/temp` with
 * `temp-{1}` gives `temp-kitchen` for `sensors/kitchen/temp`).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === '#') return !topic.startsWith('$');
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

export function streamName(template: string, topic: string): string {
  if (template === '{topic}') return topic;
  const levels = topic.split('/');
  return template.replace(/\{(topic|\d+)\}/g, (_, key: string) => (key === 'topic' ? topic : (levels[Number(key)] ?? '')));
}
