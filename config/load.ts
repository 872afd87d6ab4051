/**
 * Reads and validates the config once, at start: YAML in, a frozen `Config`
 * out, or a `ConfigError` that lists every problem with the key path, the
 * bad value and what is allowed (at most MAX_PROBLEMS of them).
 *
 * What a file must be before its content is used (`loadConfigFile`, so both
 * `spillway run` and `spillway check-config`):
 *   - a regular file (not a FIFO, device or directory), opened without
 *     waiting on a FIFO writer;
 *   - writable by its owner only (mode & 0o022 == 0), in a directory that
 *     others cannot replace it in;
 *   - at most MAX_CONFIG_BYTES, UTF-8, without control characters;
 *   - one plain YAML 1.2 document (config/read-yaml.ts);
 *   - no `__proto__` / `constructor` / `prototype` keys, nesting at most
 *     MAX_DEPTH (config/input-guards.ts);
 *   - valid against the strict schema (config/schema.ts), with path-like
 *     values and URLs checked (config/path-checks.ts, config/url-checks.ts)
 *     and no two of its own listeners on one port (config/listen-checks.ts);
 *   - naming TLS files that exist, the service user can read and that hold
 *     usable certificates and keys, and an existing dataDir it can write in
 *     (config/file-checks.ts), so that
 *     `run` refuses with 78 before it opens anything.
 * A relative `dataDir` is resolved against the process's working directory
 * (under systemd, WorkingDirectory=) and the frozen config holds it
 * absolute; an existing dataDir must be a directory others cannot write.
 */
import { isUtf8 } from 'node:buffer';
import { constants, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, SpillwayError } from '../daemon/errors.js';
import { describeIssue, formatValue } from './describe-issue.js';
import { guardDocument } from './input-guards.js';
import { checkFiles, type Reader } from './file-checks.js';
import { checkListeners } from './listen-checks.js';
import { checkPaths } from './path-checks.js';
import { readYaml } from './read-yaml.js';
import { configSchema, type Config } from './schema.js';

/** A config is a few KiB; anything this large is a mistake or an attack. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Problems listed at most; the rest are counted. */
export const MAX_PROBLEMS = 50;

export interface ParseOptions {
  /** Resolve a relative `dataDir` against this directory (loadConfigFile: the process's working directory). */
  readonly cwd?: string;
  /** loadConfigFile: whose permissions the TLS files and dataDir are checked against (default: the service user, config/file-checks.ts). */
  readonly reader?: Reader;
}

export async function loadConfigFile(path: string, options: ParseOptions = {}): Promise<Config> {
  const text = await readConfigText(path);
  const config = parseConfigText(text, path, { cwd: options.cwd ?? process.cwd() });
  const problem = await checkDataDir(config.dataDir);
  const problems = [...(problem === undefined ? [] : [problem]), ...(await checkFiles(config, options.cwd ?? process.cwd(), options.reader))];
  if (problems.length > 0) throw new ConfigError(capped(problems));
  return config;
}

export function parseConfigText(text: string, origin = 'config', options: ParseOptions = {}): Config {
  return parseConfig(readYaml(text, origin) ?? {}, options);
}

export function parseConfig(input: unknown, options: ParseOptions = {}): Config {
  // A hostile document is refused with these problems alone: the schema never copies its keys.
  const hostile = guardDocument(input);
  if (hostile.length > 0) throw new ConfigError(capped(hostile));
  const result = configSchema.safeParse(input);
  const problems = result.success ? [] : result.error.issues.flatMap((issue) => describeIssue(issue, input));
  problems.push(...checkPaths(input, options.cwd));
  if (result.success) problems.push(...checkListeners(result.data));
  if (!result.success || problems.length > 0) throw new ConfigError(capped(problems));
  const config = result.data;
  if (options.cwd !== undefined) config.dataDir = resolve(options.cwd, config.dataDir);
  return deepFreeze(config);
}

async function readConfigText(path: string): Promise<string> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new SpillwayError('CONFIG_READ', `cannot read config ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ConfigError([`${path}: ${kindOf(info)} is not allowed: expected a regular file`]);
    if ((info.mode & 0o022) !== 0) {
      throw new ConfigError([`${path}: mode ${octal(info.mode)} lets ${writers(info.mode)} write it, which is not allowed: expected a file only its owner can write (chmod go-w ${path})`]);
    }
    const dir = await stat(dirname(path));
    if ((dir.mode & 0o002) !== 0 && (dir.mode & 0o1000) === 0) {
      throw new ConfigError([`${path}: its directory ${dirname(path)} (mode ${octal(dir.mode)}) lets others replace it, which is not allowed: expected a directory others cannot write, or one with the sticky bit`]);
    }
    if (info.size > MAX_CONFIG_BYTES) throw new ConfigError([`${path}: ${info.size} bytes is too large (at most ${MAX_CONFIG_BYTES})`]);
    // Read at most one byte past the limit, whatever the size said: the file may grow meanwhile.
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0 || (n += bytesRead) === buf.length) break;
    }
    if (n > MAX_CONFIG_BYTES) throw new ConfigError([`${path}: more than ${MAX_CONFIG_BYTES} bytes is too large (at most ${MAX_CONFIG_BYTES})`]);
    return decodeText(buf.subarray(0, n), path);
  } catch (err) {
    if (err instanceof SpillwayError) throw err;
    throw new SpillwayError('CONFIG_READ', `cannot read config ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle.close();
  }
}

/** UTF-8 text without control characters other than tab, CR and LF (YAML 1.2's printable set); a BOM is dropped. */
function decodeText(buf: Buffer, origin: string): string {
  const text = buf.toString('utf8');
  if (!isUtf8(buf)) {
    throw new ConfigError([`${origin}: bytes that are not UTF-8 (at line ${lineOf(text, text.indexOf('\uFFFD'))}) are not allowed: expected a UTF-8 text file`]);
  }
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(text);
  if (control !== null) {
    const code = `U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    throw new ConfigError([`${origin}: a control character (${code}) at line ${lineOf(text, control.index)} is not allowed: expected text (tab, newline and carriage return are the only control characters YAML takes)`]);
  }
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** An existing dataDir must be a directory others cannot write in (a missing one is created by the daemon). */
async function checkDataDir(dir: string): Promise<string | undefined> {
  let info: Stats;
  try {
    info = await stat(dir);
  } catch (err) {
    // Missing: the daemon creates it. Unreadable by whoever checks: the daemon reports that when it opens the spool.
    if ((err as NodeJS.ErrnoException).code !== undefined) return undefined;
    throw err;
  }
  if (!info.isDirectory()) return `dataDir: ${formatValue(dir)} is not allowed: it is ${kindOf(info)}; expected a directory`;
  if ((info.mode & 0o002) !== 0) {
    return `dataDir: ${formatValue(dir)} is not allowed: its mode ${octal(info.mode)} lets others write in it; expected a directory only spillway's user and group can write`;
  }
  return undefined;
}

function capped(problems: string[]): string[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_PROBLEMS), `(and ${problems.length - MAX_PROBLEMS} more problems)`];
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return info.isFile() ? 'a regular file' : 'not a regular file';
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

function writers(mode: number): string {
  const group = (mode & 0o020) !== 0;
  const others = (mode & 0o002) !== 0;
  return group && others ? 'group and others' : group ? 'its group' : 'others';
}

function lineOf(text: string, index: number): number {
  return index < 0 ? 1 : text.slice(0, index).split('\n').length;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
