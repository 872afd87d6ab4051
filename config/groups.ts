/**
 * `groups`: destinations that each get every record of the streams they
 * select (docs/PROTOCOL.md, "Groups"). A group is named by its key and
 * selects streams by MQTT-style filters over stream names (`+` one level,
 * `#` the rest); without `streams` it selects every stream. Without a
 * `groups` key there is one group, `default`, selecting every stream.
 *
 * Bounds: at most 31 groups (the core keeps who still owes a record in one
 * integer), names like source names.
 */
import { z } from 'zod';
import { topicMatches } from '../drivers/mqtt/topic.js';

/** The core tracks the groups that owe a record in one 31-bit mask. */
export const MAX_GROUPS = 31;
export const DEFAULT_GROUP = 'default';

/** A filter over stream names, MQTT style: `#` only as the last level, `+` and `#` only as whole levels. */
const streamFilter = z
  .string()
  .min(1)
  .refine((f) => f.split('/').every((level, i, all) => (level !== '#' || i === all.length - 1) && (level.length <= 1 || !/[+#]/.test(level))), {
    message: 'an MQTT-style filter: + and # only as whole levels, # only last (e.g. sensors/+/temp, sensors/alarm/#)',
  });

export const groupSchema = z.strictObject({
  streams: z.array(streamFilter).min(1).optional(),
  maxBacklogRecords: z.int().min(1).max(1_000_000_000).optional(),
  maxBacklogBytes: z.int().min(1).max(1024 ** 4).optional(),
});

export const groupsSchema = z
  .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a group name: letters, digits, _ . - (1-64 chars)'), groupSchema)
  .refine((g) => Object.keys(g).length >= 1, 'at least one group (or no `groups` key: one group `default` with every stream)')
  .refine((g) => Object.keys(g).length <= MAX_GROUPS, `at most ${MAX_GROUPS} groups`);

export type GroupsConfig = z.infer<typeof groupsSchema>;
export type GroupConfig = z.infer<typeof groupSchema>;

/** The groups in force: the declared ones, or `default` with every stream. */
export function declaredGroups(groups: GroupsConfig | undefined): ReadonlyArray<readonly [string, GroupConfig]> {
  return groups === undefined ? [[DEFAULT_GROUP, {}]] : Object.entries(groups);
}

/** Does a group select a stream? */
export function selects(group: GroupConfig, stream: string): boolean {
  return group.streams === undefined || group.streams.some((f) => topicMatches(f, stream));
}

/** `group` values of dial and MQTT upstream entries that name no declared group, with their key paths. */
export function undeclaredGroups(
  groups: GroupsConfig | undefined,
  entries: ReadonlyArray<{ readonly path: string; readonly group: string }>,
): Array<{ path: string; group: string }> {
  const names = new Set(declaredGroups(groups).map(([name]) => name));
  return entries.filter((e) => !names.has(e.group));
}
