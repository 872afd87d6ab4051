/**
 * YAML text to plain data, refusing what a config never needs and an attack
 * might use: more than one document, a `%YAML 1.1` directive (its schema
 * merges `<<` keys and reads `yes` as true), tags (`!!binary`, `!!set`,
 * custom `!tags`), mapping keys that are lists or mappings, duplicate keys,
 * and aliases that expand past a small budget (a "billion laughs" file).
 * Each refusal is one `ConfigError` problem naming the line, and every one
 * in the file is listed (not only the first); an alias whose anchor is not
 * defined before it is named with its line.
 */
import { isScalar, parseDocument, visit, type YAMLError } from 'yaml';
import { ConfigError } from '../daemon/errors.js';
import { MAX_DEPTH } from './input-guards.js';

/** YAML aliases allowed: enough for shared blocks, too few for a billion laughs. */
export const MAX_ALIASES = 100;

export function readYaml(text: string, origin: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, resolveKnownTags: false, version: '1.2' });
  // Every problem is listed, each at the line it names (duplicates of one spot once).
  const problems: string[] = [];
  const add = (problem: string) => {
    if (!problems.includes(problem)) problems.push(problem);
  };
  for (const error of doc.errors) add(yamlError(error, text, origin));
  const version = doc.directives?.yaml.version;
  if (version !== undefined && version !== '1.2') {
    add(`${origin}: a %YAML ${version} directive is not allowed: expected YAML 1.2 (remove the %YAML line)`);
  }
  for (const warning of doc.warnings) add(yamlError(warning, text, origin));
  visit(doc, {
    Pair(_key, pair) {
      if (pair.key === null || isScalar(pair.key)) return undefined;
      const { line, col } = lineCol(text, (pair.key as { range?: [number, number, number] }).range?.[0] ?? 0);
      add(`${origin}: not valid YAML at line ${line}, column ${col}: a key that is a list or mapping is not allowed: expected a plain key`);
      return visit.SKIP;
    },
    Alias(_key, alias) {
      if (alias.resolve(doc) !== undefined) return;
      const { line, col } = lineCol(text, alias.range?.[0] ?? 0);
      add(`${origin}: not valid YAML at line ${line}, column ${col}: the alias *${alias.source} names no anchor defined before it: expected an &${alias.source} earlier in the file`);
    },
  });
  if (problems.length > 0) throw new ConfigError(problems, { cause: doc.errors[0] ?? doc.warnings[0] });
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
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY': {
      // `a: 1` followed by `  b: 2`: yaml names line 1, the line to fix is the indented one after it.
      const deeper = pos === undefined ? undefined : indentedAfter(text, pos.line);
      if (deeper === undefined || pos === undefined) return `${head}: ${first}`;
      return `${origin}: not valid YAML at line ${deeper.line}, column ${deeper.col}: this line is indented deeper than line ${pos.line} above it, whose value is already given, which is not allowed: expected it at the indentation of the keys beside it, or under a key without a value`;
    }
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

/** The first non-blank line after `line` (1-based) when it is indented deeper than `line`, with its column. */
function indentedAfter(text: string, line: number): { line: number; col: number } | undefined {
  const lines = text.split('\n');
  const indent = (l: string) => l.length - l.trimStart().length;
  const base = lines[line - 1];
  if (base === undefined) return undefined;
  for (let i = line; i < lines.length; i++) {
    const l = lines[i] as string;
    if (l.trim() === '' || l.trimStart().startsWith('#')) continue;
    return indent(l) > indent(base) ? { line: i + 1, col: indent(l) + 1 } : undefined;
  }
  return undefined;
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const nl = before.lastIndexOf('\n');
  return { line: before.split('\n').length, col: offset - nl };
}
