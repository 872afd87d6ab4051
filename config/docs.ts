/**
 * The configuration reference (docs/CONFIG.md), generated from the schema:
 * every key path, its type and allowed values, its default and what it
 * does. Types, ranges and defaults are read from the zod schema itself;
 * descriptions come from the schema's `.describe()` where it has one, else
 * from config/descriptions.ts (keyed by the same paths). A test fails when
 * a key has no description, when descriptions.ts names a key the schema no
 * longer has, and when docs/CONFIG.md differs from `renderConfigDocs()`:
 * regenerate it with `node dist/scripts/gen-config-docs.js`.
 *
 * Key paths: `a.b` for mappings, `a[]` for list items, `a.<name>` for
 * mappings keyed by names the operator chooses (streams, shares).
 */
import { DESCRIPTIONS, INTRO, SECTION_PLACEHOLDERS } from './descriptions.js';
import { humanBytes } from './describe-issue.js';
import { checkMessage, literalValues, ROOT, unwrap, type SchemaNode, type Unwrapped } from './schema-walk.js';

export interface DocRow {
  /** `spool.quotaBytes`, `sources.mqtt[].url`, `streams.<stream>.priority` */
  readonly key: string;
  /** Type and allowed values, e.g. "integer from 1 to 100000". */
  readonly type: string;
  /** Markdown: the default, "unset", "required" or "see below". */
  readonly default: string;
  readonly description: string;
}

/** Every key of the schema, in schema order. */
export function configRows(): DocRow[] {
  const rows: DocRow[] = [];
  walk(ROOT, '', rows);
  return rows;
}

export function renderConfigDocs(): string {
  const rows = configRows();
  const out: string[] = [INTRO.trim(), ''];
  const top = rows.filter((r) => !r.key.includes('.') && !r.key.includes('[') && !isSection(r));
  if (top.length > 0) out.push('## Top level', '', ...table(top), '');
  for (const section of rows.filter((r) => !r.key.includes('.') && isSection(r))) {
    out.push(`## \`${section.key}\``, '');
    if (section.description !== '') out.push(section.description, '');
    out.push(...table(rows.filter((r) => r.key.startsWith(`${section.key}.`) || r.key.startsWith(`${section.key}[`))), '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

function isSection(row: DocRow): boolean {
  return row.type === 'mapping' || row.type.startsWith('mapping of');
}

function table(rows: readonly DocRow[]): string[] {
  return ['| key | type and allowed values | default | description |', '| --- | --- | --- | --- |', ...rows.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`)];
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

// ── the walk ─────────────────────────────────────────────────────────────

function walk(node: SchemaNode, key: string, rows: DocRow[]): void {
  const u = unwrap(node);
  const def = u.node.def;
  const push = (type: string) => rows.push({ key, type, default: defaultText(u, key), description: describe(key, u) });
  switch (def.type) {
    case 'object':
      if (key !== '') push('mapping');
      for (const [name, child] of Object.entries(def.shape ?? {})) walk(child, join(key, name), rows);
      return;
    case 'array': {
      const element = unwrap(def.element as SchemaNode).node;
      const nested = element.def.type === 'object' || element.def.type === 'union';
      push(`list${countText(u.node)}, each ${nested ? 'a mapping' : leafType(element, key)}`);
      if (nested) walk(def.element as SchemaNode, `${key}[]`, rows);
      return;
    }
    case 'record': {
      const value = unwrap(def.valueType as SchemaNode).node;
      const placeholder = SECTION_PLACEHOLDERS[key] ?? '<name>';
      const nested = value.def.type === 'object';
      push(`mapping of \`${placeholder}\` (${leafType(unwrap(def.keyType as SchemaNode).node, key)}) to ${nested ? 'mappings' : leafType(value, key)}`);
      if (nested) walk(def.valueType as SchemaNode, `${key}.${placeholder}`, rows);
      return;
    }
    case 'union':
      if (def.discriminator !== undefined) {
        push(`mapping, one of ${def.options?.length ?? 0} kinds by \`${def.discriminator}\``);
        walkUnion(u, key, rows);
        return;
      }
      push(`one of ${def.options?.length ?? 0} forms`);
      return;
    default:
      push(leafType(u.node, key));
  }
}

/**
 * The members of a discriminated union: a key every member has alike is
 * one row; a key of some members only says which (`only with type: csv`).
 */
function walkUnion(u: Unwrapped, key: string, rows: DocRow[]): void {
  const union = u.node.def;
  const disc = union.discriminator as string;
  const members = (union.options ?? []).map((m) => {
    const tag = literalValues(m.def.shape?.[disc])[0];
    const sub: DocRow[] = [];
    for (const [name, child] of Object.entries(m.def.shape ?? {})) if (name !== disc) walk(child, join(key, name), sub);
    return { tag, rows: sub };
  });
  const fallback = u.hasDefault ? u.defaultValue : u.prefaultValue;
  const tagDefault = fallback !== null && typeof fallback === 'object' ? (fallback as Record<string, unknown>)[disc] : undefined;
  rows.push({
    key: join(key, disc),
    type: `one of ${members.map((m) => `\`${String(m.tag)}\``).join(', ')}`,
    default: tagDefault === undefined ? '**required**' : `\`${String(tagDefault)}\``,
    description: describe(join(key, disc), undefined),
  });
  const seen = new Set<string>();
  for (const m of members) {
    for (const r of m.rows) {
      if (seen.has(r.key)) continue;
      const alike = members.filter((o) => o.rows.some((x) => x.key === r.key && x.type === r.type && x.default === r.default));
      if (alike.length === members.length) {
        rows.push(r);
        seen.add(r.key);
        continue;
      }
      for (const o of members) {
        const same = o.rows.find((x) => x.key === r.key);
        if (same === undefined) continue;
        rows.push({ ...same, type: `${same.type} (only with ${disc}: \`${String(o.tag)}\`)`, description: describe(`${same.key}`, undefined, String(o.tag)) });
      }
      seen.add(r.key);
    }
  }
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

function describe(key: string, u: Unwrapped | undefined, variant?: string): string {
  const own = (variant === undefined ? undefined : DESCRIPTIONS[`${key}@${variant}`]) ?? DESCRIPTIONS[key] ?? u?.description;
  if (own !== undefined) return own;
  // `streams.<stream>.X` is `streamDefaults.X` for one stream.
  const alias = key.replace(/^streams\.<stream>\./, 'streamDefaults.');
  return alias !== key ? (DESCRIPTIONS[alias] ?? '') : '';
}

// ── types and defaults ───────────────────────────────────────────────────

function leafType(node: SchemaNode, key: string): string {
  const def = node.def;
  switch (def.type) {
    case 'string':
      return stringType(node);
    case 'number':
      return numberType(node, key);
    case 'boolean':
      return '`true` or `false`';
    case 'enum':
    case 'literal': {
      const values = literalValues(node);
      return values.length === 1 ? code(values[0]) : `one of ${values.map(code).join(', ')}`;
    }
    default:
      return def.type;
  }
}

function stringType(node: SchemaNode): string {
  const said: string[] = [];
  for (const c of node.def.checks ?? []) {
    const check = c._zod.def;
    const message = checkMessage(check);
    if (message !== undefined) said.push(message);
    else if (check.format === 'starts_with' && check.prefix !== undefined) said.push(`a string starting with \`${check.prefix}\``);
    else if (check.format === 'regex' && check.pattern !== undefined) said.push(`a string matching \`${String(check.pattern)}\``);
  }
  if (said.length > 0) return said.join('; ');
  const min = node.minLength ?? 0;
  const max = node.maxLength ?? null;
  if (max !== null && min === max) return `a string of ${max} character${max === 1 ? '' : 's'}`;
  if (max !== null) return `a string of ${Math.max(min, 0)} to ${max} characters`;
  return min >= 1 ? 'a non-empty string' : 'a string';
}

function numberType(node: SchemaNode, key: string): string {
  const kind = node.isInt === true ? 'integer' : 'number';
  const finite = (n: number | null | undefined) => n !== null && n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER;
  const show = (n: number) => `${n}${key.endsWith('Bytes') && n >= 1024 ? ` (${humanBytes(n)})` : ''}`;
  const min = finite(node.minValue) ? (node.minValue as number) : undefined;
  const max = finite(node.maxValue) ? (node.maxValue as number) : undefined;
  if (min !== undefined && max !== undefined) return `${kind} from ${show(min)} to ${show(max)}`;
  if (min !== undefined) return `${kind} of at least ${show(min)}`;
  if (max !== undefined) return `${kind} of at most ${show(max)}`;
  return kind;
}

function countText(node: SchemaNode): string {
  const min = node.def.checks?.map((c) => c._zod.def).find((c) => c.check === 'min_length')?.minimum;
  return min !== undefined && min > 0 ? ` of at least ${min}` : '';
}

function defaultText(u: Unwrapped, key: string): string {
  // An item of a list or of a named mapping: its keys have the defaults.
  if (key.endsWith('[]') || /\.<[a-z]+>$/.test(key)) return '—';
  if (key.startsWith('streams.<stream>.')) return `\`${key.replace('streams.<stream>.', 'streamDefaults.')}\``;
  if (u.hasDefault) return valueText(u.defaultValue, key);
  if (u.prefault) return 'see below';
  return u.optional ? 'unset' : '**required**';
}

function valueText(v: unknown, key: string): string {
  if (typeof v === 'number') return `\`${v}\`${key.endsWith('Bytes') && v >= 1024 ? ` (${humanBytes(v)})` : ''}`;
  if (typeof v === 'string') return /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(v) ? code(v) : code(JSON.stringify(v));
  if (Array.isArray(v) && v.length > 0 && v.every((x) => x !== null && typeof x === 'object')) {
    const flow = JSON.stringify(v);
    return flow.length <= 60 ? `\`${flow}\`` : `${v.length} item${v.length === 1 ? '' : 's'}, each key below at its default`;
  }
  return `\`${JSON.stringify(v)}\``;
}

function code(v: unknown): string {
  return `\`${String(v)}\``;
}
