/**
 * The topic a record is published to: `upstreams.mqtt[].topicTemplate` with
 * `{stream}` and `{prio}` replaced. A stream name holding an MQTT wildcard
 * (`+`, `#`) would make an invalid topic name: those characters become `_`.
 * Topics are remembered per stream and priority (a bounded cache).
 */

/** Streams whose topic is remembered; beyond this the cache starts over. */
const TOPIC_CACHE_ENTRIES = 4096;

export class TopicTemplate {
  readonly #template: string;
  readonly #cache = new Map<string, string>();

  constructor(template: string) {
    this.#template = template;
  }

  topicFor(stream: string, prio: number): string {
    const key = `${prio}\u0000${stream}`;
    const known = this.#cache.get(key);
    if (known !== undefined) return known;
    const safe = stream.replace(/[+#\u0000]/g, '_');
    const topic = this.#template.replaceAll('{stream}', safe).replaceAll('{prio}', String(prio));
    if (this.#cache.size >= TOPIC_CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(key, topic);
    return topic;
  }
}
