/**
 * Checks on the parsed document before the schema sees it: keys that name
 * JavaScript object internals (`__proto__`, `constructor`, `prototype`),
 * nesting deeper than any real config, and values that are not plain YAML
 * data. A document that fails these is hostile or broken; it is refused
 * with these problems alone, and never handed to code that copies keys
 * into objects.
 */
import { formatPath, formatValue } from './describe-issue.js';

export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];
/** The deepest real config is 6 levels (sources.serial[].framing.columns[]). */
export const MAX_DEPTH = 32;

export function guardDocument(doc: unknown): string[] {
  const problems: string[] = [];
  // Iterative, so that no document can overflow the stack here.
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value: doc, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: PropertyKey[] };
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_DEPTH) {
      problems.push(`${formatPath(path)}: a value nested ${path.length + 1} levels deep is not allowed: expected at most ${MAX_DEPTH} levels`);
      continue;
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] });
      continue;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      problems.push(`${formatPath(path)}: a ${kind} value is not allowed: expected plain YAML data (mappings, lists, strings, numbers, booleans)`);
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      if (FORBIDDEN_KEYS.includes(key)) {
        problems.push(`${formatPath([...path, key])}: key ${formatValue(key)} is not allowed: expected a key other than ${FORBIDDEN_KEYS.join(', ')} (they name JavaScript object internals)`);
        continue;
      }
      stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return problems;
}
