/**
 * The config schema read as data: the wrappers around a key (default,
 * prefault, optional), the keys an object allows, and which member of a
 * discriminated union an input selects. Shared by the error messages
 * (config/describe-issue.ts) and the generated reference (config/docs.ts),
 * so both read the schema the same way. It reads zod 4's public `def`
 * objects and nothing else; a schema kind it does not know is reported as
 * such (docs) or gives no hint (errors), never a crash.
 */
import { configSchema } from './schema.js';

/** The parts of a zod 4 schema this module reads. */
export interface SchemaNode {
  readonly def: SchemaDef;
  readonly description?: string | undefined;
  readonly minValue?: number | null;
  readonly maxValue?: number | null;
  readonly isInt?: boolean;
  readonly minLength?: number | null;
  readonly maxLength?: number | null;
}

export interface SchemaDef {
  readonly type: string;
  readonly innerType?: SchemaNode;
  readonly defaultValue?: unknown;
  readonly shape?: Readonly<Record<string, SchemaNode>>;
  readonly element?: SchemaNode;
  readonly keyType?: SchemaNode;
  readonly valueType?: SchemaNode;
  readonly options?: readonly SchemaNode[];
  readonly discriminator?: string;
  readonly entries?: Readonly<Record<string, string | number>>;
  readonly values?: readonly unknown[];
  readonly checks?: ReadonlyArray<{ readonly _zod: { readonly def: CheckDef } }>;
}

export interface CheckDef {
  readonly check: string;
  readonly format?: string;
  readonly pattern?: RegExp;
  readonly prefix?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly length?: number;
  readonly error?: (issue: unknown) => unknown;
}

export const ROOT = configSchema as unknown as SchemaNode;

/** A key's schema with its wrappers peeled off, and what they said. */
export interface Unwrapped {
  readonly node: SchemaNode;
  /** The key may be left out (it has a default, a prefault or is optional). */
  readonly optional: boolean;
  /** `.default(v)`: the value used when the key is left out. */
  readonly hasDefault: boolean;
  readonly defaultValue?: unknown;
  /** `.prefault(v)`: a section whose keys all have defaults; `v` is parsed when the key is left out. */
  readonly prefault: boolean;
  readonly prefaultValue?: unknown;
  /** The first description found on the way in. */
  readonly description?: string | undefined;
}

export function unwrap(node: SchemaNode): Unwrapped {
  let n = node;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  let prefault = false;
  let prefaultValue: unknown;
  let description = n.description;
  for (;;) {
    const t = n.def.type;
    if (t !== 'default' && t !== 'prefault' && t !== 'optional') break;
    optional = true;
    if (t === 'default' && !hasDefault) {
      hasDefault = true;
      defaultValue = n.def.defaultValue;
    }
    if (t === 'prefault' && !prefault) {
      prefault = true;
      prefaultValue = n.def.defaultValue;
    }
    n = n.def.innerType as SchemaNode;
    description ??= n.description;
  }
  return { node: n, optional, hasDefault, defaultValue, prefault, prefaultValue, description };
}

/** The member of a discriminated union that `input` selects (by its discriminator), if any. */
export function unionMember(union: SchemaNode, input: unknown): SchemaNode | undefined {
  const key = union.def.discriminator;
  if (key === undefined || input === null || typeof input !== 'object') return undefined;
  const tag = (input as Record<string, unknown>)[key];
  return union.def.options?.find((o) => literalValues(o.def.shape?.[key]).includes(tag));
}

/** The values a literal (or enum) key accepts. */
export function literalValues(node: SchemaNode | undefined): unknown[] {
  if (node === undefined) return [];
  const inner = unwrap(node).node.def;
  if (inner.type === 'literal') return [...(inner.values ?? [])];
  if (inner.type === 'enum') return Object.values(inner.entries ?? {});
  return [];
}

/**
 * The schema of the value at `path` below `node`, following the input so
 * that a discriminated union resolves to the member the input chose.
 */
export function nodeAt(path: readonly PropertyKey[], input: unknown, node: SchemaNode = ROOT): SchemaNode | undefined {
  let n: SchemaNode | undefined = node;
  let v = input;
  for (const key of path) {
    n = n === undefined ? undefined : childOf(n, key, v);
    v = v !== null && typeof v === 'object' && Object.hasOwn(v, key) ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  }
  return n;
}

function childOf(node: SchemaNode, key: PropertyKey, input: unknown): SchemaNode | undefined {
  let inner = unwrap(node).node;
  if (inner.def.type === 'union') inner = unionMember(inner, input) ?? inner;
  const def = inner.def;
  switch (def.type) {
    case 'object':
      return typeof key === 'string' ? def.shape?.[key] : undefined;
    case 'array':
      return def.element;
    case 'record':
      return def.valueType;
    default:
      return undefined;
  }
}

/**
 * The keys allowed in the object at `path` (for "unknown key" messages);
 * `variant` names the union member they belong to, e.g. `type "nmea"`.
 */
export function allowedKeysAt(path: readonly PropertyKey[], input: unknown): { keys: string[]; variant?: string } {
  const n = nodeAt(path, input);
  if (n === undefined) return { keys: [] };
  let inner = unwrap(n).node;
  let variant: string | undefined;
  if (inner.def.type === 'union') {
    const member = unionMember(inner, valueAt(input, path));
    if (member === undefined) return { keys: [] };
    const key = inner.def.discriminator as string;
    variant = `${key} ${JSON.stringify(literalValues(member.def.shape?.[key])[0])}`;
    inner = member;
  }
  const keys = inner.def.type === 'object' ? Object.keys(inner.def.shape ?? {}) : [];
  return variant === undefined ? { keys } : { keys, variant };
}

/** The raw input value at a path, or undefined when any step is missing. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** The custom message a check was given (`.regex(re, 'message')`, `.refine(fn, 'message')`), if any. */
export function checkMessage(check: CheckDef): string | undefined {
  const m = check.error?.({});
  return typeof m === 'string' ? m : undefined;
}
