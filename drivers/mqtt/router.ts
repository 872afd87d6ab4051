/**
 * Topic → stream routing for the MQTT source and the embedded broker: the
 * first subscription whose filter matches names the stream (drivers/mqtt/topic.ts),
 * and what each topic gave is remembered in a bounded cache.
 *
 * A topic can become a stream only when it is text MQTT allows: valid UTF-8
 * without U+0000 ([MQTT-1.5.3-1], [MQTT-1.5.3-2]). `topicProblem` says why
 * one is not, so different byte topics never merge into one stream name.
 */
import { isUtf8 } from 'node:buffer';
import type { RouteConfig } from '../../config/schema.js';
import { streamName, topicMatches } from './topic.js';

export interface Route {
  readonly stream: string;
  /** The subscription's priority, if it sets one. */
  readonly priority: number | undefined;
}

/** Topics whose route is remembered; beyond this the cache starts over. */
const ROUTE_CACHE_TOPICS = 4096;

export class TopicRouter {
  readonly #subs: readonly RouteConfig[];
  readonly #routes = new Map<string, Route | null>();

  constructor(subscriptions: readonly RouteConfig[]) {
    this.#subs = subscriptions;
  }

  /** The route of a topic, or null when no subscription matches it. */
  route(topic: string): Route | null {
    const known = this.#routes.get(topic);
    if (known !== undefined) return known;
    const sub = this.#subs.find((s) => topicMatches(s.topic, topic));
    const route = sub === undefined ? null : { stream: streamName(sub.stream, topic), priority: sub.priority };
    if (this.#routes.size >= ROUTE_CACHE_TOPICS) this.#routes.clear();
    this.#routes.set(topic, route);
    return route;
  }
}

/**
 * Why a topic as bytes is not an MQTT topic, or undefined when it is one.
 * Used where the raw bytes are at hand (the embedded broker reads them off
 * the wire before its parser decodes them).
 */
export function topicBytesProblem(topic: Uint8Array): 'nul' | 'invalid_utf8' | undefined {
  if (topic.includes(0)) return 'nul';
  return isUtf8(topic) ? undefined : 'invalid_utf8';
}

/**
 * The same for a topic mqtt.js already decoded: mqtt-packet decodes topics
 * with `toString('utf8')`, which turns every invalid sequence into U+FFFD,
 * so a U+FFFD stands for bytes that may have been anything. Refusing it is
 * the only way two different byte topics cannot merge (a sensor that really
 * publishes U+FFFD in a topic is refused too: a documented limit).
 */
export function decodedTopicProblem(topic: string): 'nul' | 'invalid_utf8' | undefined {
  if (topic.includes('\u0000')) return 'nul';
  return topic.includes('\uFFFD') ? 'invalid_utf8' : undefined;
}
