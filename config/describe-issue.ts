/**
 * Turns a schema issue into a line an operator can act on: the key path,
 * the bad value and what is allowed, e.g.
 *
 *   consumers.maxCredit: 0 is not allowed: expected at least 1
 *   sources.serial[0].framing.type: "slip" is not allowed: expected one of "lines", "jsonl", "csv", "nmea", "fixed"
 *   consumers.maxCredits: unknown key (did you mean maxCredit? allowed here: ...)
 *   sources.serial[0].path: is required: expected string
 *
 * Paths and values are printed escaped (a key or value from a hostile file
 * cannot put control characters on the operator's terminal) and shortened.
 */
import type { z } from 'zod';
import { allowedKeysAt, valueAt } from './schema-walk.js';
import { EMBEDDED_BROKER_NAME } from './schema.js';

type Issue = z.core.$ZodIssue;

export function describeIssue(issue: Issue, input: unknown): string[] {
  const path = issue.path;
  const at = formatPath(path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const { keys, variant } = allowedKeysAt(path, input);
      return issue.keys.map((k) => `${formatPath([...path, k])}: unknown key${allowedHint(k, keys, variant)}`);
    }
    case 'invalid_key': {
      // The path ends with the bad key of a record (a map of names).
      const key = String(path[path.length - 1]);
      const inner = issue.issues[0];
      const expected = inner === undefined ? 'expected a valid key' : expectation(inner, key, path);
      return [`${formatPath(path.slice(0, -1))}: key ${formatValue(key)} is not allowed: ${expected}`];
    }
    case 'custom': {
      const special = REFINEMENTS[issue.message]?.(issue, input);
      if (special !== undefined) return special;
      break;
    }
    default:
      break;
  }
  const value = valueAt(input, path);
  const expected = expectation(issue, value, path);
  return [value === undefined ? `${at}: is required: ${expected}` : `${at}: ${formatValue(value)} is not allowed: ${expected}`];
}

/** What the schema allows, as "expected ...". */
function expectation(issue: Issue, value: unknown, path: readonly PropertyKey[]): string {
  switch (issue.code) {
    case 'invalid_type':
      if (typeof value === 'number' && !Number.isFinite(value)) return 'expected a finite number';
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'too_small':
      return `expected ${bound(issue.origin, issue.minimum, issue.inclusive !== false, issue.exact === true, 'at least', 'more than', path)}`;
    case 'too_big':
      return `expected ${bound(issue.origin, issue.maximum, issue.inclusive !== false, issue.exact === true, 'at most', 'less than', path)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      if (!issue.message.startsWith('Invalid')) return `expected ${issue.message}`; // the schema's own words
      if (issue.format === 'starts_with' && 'prefix' in issue) return `expected a string starting with ${JSON.stringify(issue.prefix)}`;
      if (issue.format === 'regex' && issue.pattern !== undefined) return `expected a string matching ${issue.pattern}`;
      return `expected a valid ${issue.format}`;
    case 'not_multiple_of':
      return `expected a multiple of ${issue.divisor}`;
    case 'invalid_union':
      if (issue.discriminator !== undefined && 'options' in issue && issue.options !== undefined) {
        return `expected one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
      }
      return 'expected one of the allowed forms';
    case 'custom':
      // A refinement's message is either what is allowed ("a cron expression") or a rule ("maxMs must be at least initialMs").
      return /\b(is|are|must|needs?|goes|go|should|cannot|can't)\b/.test(issue.message) ? issue.message : `expected ${issue.message}`;
    default:
      return issue.message;
  }
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  record: 'a mapping (key: value lines)',
  array: 'a list',
};

function bound(origin: string, n: number | bigint, inclusive: boolean, exact: boolean, incl: string, excl: string, path: readonly PropertyKey[]): string {
  const count = Number(n);
  switch (origin) {
    case 'string':
      if (count === 1 && !exact && incl === 'at least') return 'a non-empty string';
      return `${exact ? 'exactly' : incl} ${count} character${count === 1 ? '' : 's'}`;
    case 'array':
      return `${exact ? 'exactly' : incl} ${count} item${count === 1 ? '' : 's'}`;
    default: {
      const key = String(path[path.length - 1] ?? '');
      const unit = key.endsWith('Bytes') && count >= 1024 ? ` (${humanBytes(count)})` : '';
      return `${inclusive ? incl : excl} ${String(n)}${unit}`;
    }
  }
}

/** ` (did you mean X? allowed here: a, b, c)` */
function allowedHint(key: string, allowed: readonly string[], variant: string | undefined): string {
  if (allowed.length === 0) return '';
  const near = closest(key, allowed);
  return ` (${near === undefined ? '' : `did you mean ${near}? `}allowed here${variant === undefined ? '' : ` for ${variant}`}: ${allowed.join(', ')})`;
}

/** The allowed key a typo most likely meant: same letters ignoring case, or at most 2 edits away. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const a of allowed) {
    const d = a.toLowerCase() === lower ? 0 : editDistance(lower, a.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = a;
      bestDistance = d;
    }
  }
  return key.length >= 3 ? best : undefined;
}

/** Levenshtein distance, giving up (returning `limit`) once it cannot be below `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit || a.length > 64 || b.length > 64) return limit;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return Math.min(prev[b.length] as number, limit);
}

// ── refinements: the schema's `.refine()` messages, explained with the values ──

type Refinement = (issue: Issue, input: unknown) => string[] | undefined;

const REFINEMENTS: Readonly<Record<string, Refinement>> = {
  'shares that add up to at most 1': (issue, input) => {
    const shares = valueAt(input, issue.path);
    if (shares === null || typeof shares !== 'object') return undefined;
    // A share out of range is reported on its own key; its sum says nothing more.
    if (Object.values(shares).some((v) => typeof v !== 'number' || v < 0 || v > 1)) return [];
    const sum = Object.values(shares).reduce((a: number, b) => a + (typeof b === 'number' ? b : 0), 0);
    return [`${formatPath(issue.path)}: ${formatValue(shares)} is not allowed: they add up to ${round(sum)}; expected shares that add up to at most 1`];
  },
  'source names that are all different': (issue, input) => {
    const sources = valueAt(input, issue.path) as Record<string, unknown> | undefined;
    const named: Array<{ name: unknown; path: PropertyKey[]; label?: string }> = [];
    // The embedded broker (on unless disabled) is a source named "embedded-broker".
    const broker = sources?.['embeddedBroker'] as Record<string, unknown> | undefined;
    if (broker?.['enabled'] !== false) named.push({ name: EMBEDDED_BROKER_NAME, path: [...issue.path, 'embeddedBroker'], label: 'the embedded broker' });
    for (const kind of ['mqtt', 'serial'] as const) {
      const list = sources?.[kind];
      if (!Array.isArray(list)) continue;
      list.forEach((s: unknown, i) => named.push({ name: (s as Record<string, unknown> | null)?.['name'] ?? (kind === 'mqtt' ? 'mqtt' : undefined), path: [...issue.path, kind, i] }));
    }
    const out: string[] = [];
    named.forEach((s, i) => {
      const first = named.findIndex((o) => o.name === s.name);
      if (first === i || s.name === undefined) return;
      const other = named[first] as (typeof named)[number];
      const firstAt = other.label ?? formatPath(other.path);
      out.push(`${formatPath([...s.path, 'name'])}: ${formatValue(s.name)} is not allowed: ${firstAt} has that name; expected source names that are all different`);
    });
    return out.length > 0 ? out : undefined;
  },
  'columns are required when header is false': (issue) => [`${formatPath(issue.path)}: is required when header is false: expected a list of column names`],
  'frameBytes must be at most maxFrameBytes': (issue, input) => sibling(issue, input, 'maxFrameBytes', 4096, 'at most'),
  'maxMs must be at least initialMs': (issue, input) => sibling(issue, input, 'initialMs', 500, 'at least'),
  'initialMs must be at most maxMs': (issue, input) => sibling(issue, input, 'maxMs', 30_000, 'at most'),
};

/** "`key`: V is not allowed: expected at most `other` (N)", N read beside it (or its default). */
function sibling(issue: Issue, input: unknown, other: string, otherDefault: number, relation: string): string[] {
  const value = valueAt(input, issue.path);
  const near = valueAt(input, [...issue.path.slice(0, -1), other]);
  const n = typeof near === 'number' ? near : otherDefault;
  return [`${formatPath(issue.path)}: ${formatValue(value)} is not allowed: expected ${relation} ${other} (${n})`];
}

// ── formatting ──────────────────────────────────────────────────────────

const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/;

/** `sources.serial[0].framing`, `streams["sensors/alarm"].priority`, `(top level)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && PLAIN_KEY.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${escape(JSON.stringify(String(key)))}]`;
  }
  return out;
}

const MAX_SHOWN = 60;

/** A value as the file had it: JSON, `.inf`/`.nan` as YAML writes them, long values shortened. */
export function formatValue(value: unknown): string {
  if (value === null) return 'null (an empty value)';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return '.nan';
    if (!Number.isFinite(value)) return value > 0 ? '.inf' : '-.inf';
    return String(value);
  }
  if (typeof value === 'string') {
    if (value.length <= MAX_SHOWN) return escape(JSON.stringify(value));
    return `${escape(JSON.stringify(value.slice(0, 40)).slice(0, -1))}…" (${value.length} characters)`;
  }
  let json: string;
  try {
    json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)) ?? String(value);
  } catch (err) {
    json = `(unprintable: ${(err as Error).message})`;
  }
  return escape(json.length <= MAX_SHOWN ? json : `${json.slice(0, 50)}…`);
}

/** Escapes what JSON leaves raw but a terminal would act on: DEL, C1 controls, bidi and zero-width marks, line separators. */
function escape(s: string): string {
  return s.replace(/[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${round(v)} ${units[u]}`;
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
