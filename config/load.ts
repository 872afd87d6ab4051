/**
 * Reads and validates the config once, at start: YAML in, a frozen `Config`
 * out, or a `ConfigError` that lists every problem with the key path, the
 * bad value and what is allowed.
 */
import { readFile, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, SpillwayError } from '../daemon/errors.js';
import { configSchema, type Config } from './schema.js';

/** A config is a few KiB; anything this large is a mistake or an attack. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** YAML aliases allowed: enough for shared blocks, too few for a billion laughs. */
const MAX_ALIASES = 100;

export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    const info = await stat(path);
    if (info.size > MAX_CONFIG_BYTES) {
      throw new ConfigError([`${path}: ${info.size} bytes is too large (at most ${MAX_CONFIG_BYTES})`]);
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof SpillwayError) throw err;
    throw new SpillwayError('CONFIG_READ', `cannot read config ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, origin = 'config'): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: MAX_ALIASES, uniqueKeys: true });
  } catch (err) {
    throw new ConfigError([`${origin}: not valid YAML: ${(err as Error).message.split('\n')[0]}`], { cause: err });
  }
  return parseConfig(doc ?? {});
}

export function parseConfig(input: unknown): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, input)));
  return deepFreeze(result.data);
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = issue.path.map(String);
  const at = (p: readonly string[]) => (p.length === 0 ? '(top level)' : p.join('.'));
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeys(path);
    return issue.keys
      .map((k) => `${at([...path, k])}: unknown key${allowed.length > 0 ? ` (allowed here: ${allowed.join(', ')})` : ''}`)
      .join('\n  ');
  }
  const value = valueAt(input, path);
  const shown = value === undefined ? 'missing value' : JSON.stringify(value);
  return `${at(path)}: ${shown} is not allowed: ${allowedText(issue)}`;
}

function allowedText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_big':
      return `expected at most ${String(issue.maximum)}`;
    case 'too_small':
      return `expected at least ${String(issue.minimum)}`;
    case 'invalid_type':
      return `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}

function valueAt(input: unknown, path: readonly string[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** The keys the schema allows at a path of objects (array indexes skipped). */
function allowedKeys(path: readonly string[]): string[] {
  let schema: unknown = configSchema;
  for (const key of ['', ...path]) {
    schema = unwrap(schema);
    if (key === '') continue;
    const def = (schema as { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown; valueType?: unknown } }).def;
    if (def?.type === 'object' && def.shape) schema = def.shape[key];
    else if (def?.type === 'array') schema = def.element;
    else if (def?.type === 'record') schema = def.valueType;
    else return [];
  }
  const def = (unwrap(schema) as { def?: { type?: string; shape?: Record<string, unknown> } }).def;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { type?: string; innerType?: unknown } } | undefined;
  while (s?.def && ['default', 'prefault', 'optional'].includes(s.def.type ?? '')) s = s.def.innerType as typeof s;
  return s;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
