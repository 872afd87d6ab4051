/**
 * YAML text to plain data, refusing what a config never needs and an attack
 * might use: more than one document, a `%YAML 1.1` directive (its schema
 * merges `<<` keys and reads `yes` as true), tags (`!!binary`, `!!set`,
 * custom `!tags`), mapping keys that are lists or mappings, duplicate keys,
 * and aliases that expand past a small budget (a "billion laughs" file).
 * Each refusal is one `ConfigError` problem naming the line.
 */
import { isScalar, parseDocument, visit, type YAMLError } from 'yaml';
import { ConfigError } from '../daemon/errors.js';
import { MAX_DEPTH } from './input-guards.js';

/** YAML aliases allowed: enough for shared blocks, too few for a billion laughs. */
export const MAX_ALIASES = 100;

export function readYaml(text: string, origin: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, resolveKnownTags: false, version: '1.2' });
  const error = doc.errors[0];
  if (error !== undefined) throw new ConfigError([yamlError(error, text, origin)], { cause: error });
  const version = doc.directives?.yaml.version;
  if (version !== undefined && version !== '1.2') {
    throw new ConfigError([`${origin}: a %YAML ${version} directive is not allowed: expected YAML 1.2 (remove the %YAML line)`]);
  }
  const warning = doc.warnings[0];
  if (warning !== undefined) throw new ConfigError([yamlError(warning, text, origin)], { cause: warning });
  let complexKeyAt: number | undefined;
  visit(doc, {
    Pair(_key, pair) {
      if (pair.key === null || isScalar(pair.key)) return undefined;
      complexKeyAt = (pair.key as { range?: [number, number, number] }).range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  if (complexKeyAt !== undefined) {
    const { line, col } = lineCol(text, complexKeyAt);
    throw new ConfigError([`${origin}: not valid YAML at line ${line}, column ${col}: a key that is a list or mapping is not allowed: expected a plain key`]);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const message = (err as Error).message;
    if (/alias count/i.test(message)) {
      throw new ConfigError([`${origin}: its YAML aliases expand too much, which is not allowed: expected at most ${MAX_ALIASES} alias uses (a "billion laughs" file is refused)`], { cause: err });
    }
    throw new ConfigError([`${origin}: not valid YAML: ${message.split('\n')[0] ?? message}`], { cause: err });
  }
}

function yamlError(err: YAMLError, text: string, origin: string): string {
  const pos = err.linePos?.[0];
  const where = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
  const head = `${origin}: not valid YAML${where}`;
  const first = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  switch (err.code) {
    case 'DUPLICATE_KEY': {
      const line = pos === undefined ? '' : (text.split('\n')[pos.line - 1] ?? '');
      const key = line.slice((pos?.col ?? 1) - 1).split(':')[0]?.trim();
      return `${head}: the key ${JSON.stringify(key ?? '')} appears twice in one mapping, which is not allowed: expected each key once`;
    }
    case 'MULTIPLE_DOCS':
      return `${head}: a second YAML document (after a --- line) is not allowed: expected one document`;
    case 'RESOURCE_EXHAUSTION':
      return `${head}: nesting this deep is not allowed: expected at most ${MAX_DEPTH} levels`;
    case 'TAG_RESOLVE_FAILED': {
      const tag = /Unresolved tag: (\S+)/.exec(first)?.[1]?.replace('tag:yaml.org,2002:', '!!') ?? 'this tag';
      return `${head}: the tag ${JSON.stringify(tag)} is not allowed: expected plain values without tags`;
    }
    default:
      return `${head}: ${first}`;
  }
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const nl = before.lastIndexOf('\n');
  return { line: before.split('\n').length, col: offset - nl };
}
