/**
 * Path-like values, checked beyond what the schema's types say:
 *
 *   dataDir                  the daemon creates, renames and deletes files
 *                            there: not a system directory, no control
 *                            characters. A relative dataDir is resolved
 *                            against the working directory of the process
 *                            (under systemd: WorkingDirectory=, the state
 *                            directory), not against the config file's
 *                            directory; `loadConfigFile` resolves it once.
 *   spool.file               a plain file name inside dataDir (the schema's
 *                            pattern), not `.`, `..` or a file the daemon
 *                            keeps there itself
 *   sources.serial[].path    an absolute device path
 *   *File, tls.ca/cert/key   files read at start (certificates, keys): no
 *                            control characters; relative ones are read
 *                            from the working directory, like dataDir
 *
 *   URLs connected to       a host, and a port from 1 to 65535
 *                            (config/url-checks.ts)
 *
 * Whether the files exist and the service user can read them is checked by
 * `loadConfigFile` (config/file-checks.ts), which does I/O.
 *
 * Pure: `cwd` is passed in. Values of the wrong type are left to the schema.
 */
import { isAbsolute, normalize, resolve } from 'node:path';
import { formatPath, formatValue } from './describe-issue.js';
import { valueAt } from './schema-walk.js';
import { checkUrls } from './url-checks.js';

/** Files the daemon keeps in dataDir besides the spool (daemon/spool/seq-state.ts). */
export const RESERVED_DATA_FILES: readonly string[] = ['seq.next', 'seq.next.tmp'];

/** Directories that hold the system, never a daemon's state. */
const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/dev/shm', '/etc', '/home', '/lib', '/lib64', '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/local', '/var', '/var/lib', '/var/tmp']);
/** Trees that are not files at all. */
const VIRTUAL_TREES = ['/proc/', '/sys/'];

const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkPaths(input: unknown, cwd?: string): string[] {
  const problems: string[] = [];

  const dataDir = valueAt(input, ['dataDir']);
  if (typeof dataDir === 'string' && dataDir !== '') {
    const at = `dataDir: ${formatValue(dataDir)}`;
    if (CONTROL.test(dataDir)) problems.push(`${at} is not allowed: expected a path without control characters`);
    else {
      const resolved = isAbsolute(dataDir) ? normalize(dataDir) : cwd === undefined ? undefined : resolve(cwd, dataDir);
      const bare = resolved === undefined || resolved === '/' ? resolved : resolved.replace(/\/+$/, '');
      if (bare !== undefined && (SYSTEM_DIRS.has(bare) || VIRTUAL_TREES.some((t) => bare.startsWith(t)))) {
        const shown = bare === dataDir ? at : `${at} (${bare})`;
        problems.push(`${shown} is not allowed: expected a directory of spillway's own, such as /var/lib/spillway (the daemon creates, renames and deletes files in it)`);
      }
    }
  }

  const file = valueAt(input, ['spool', 'file']);
  if (typeof file === 'string' && (file === '.' || file === '..' || RESERVED_DATA_FILES.includes(file))) {
    problems.push(`spool.file: ${formatValue(file)} is not allowed: expected a file name inside dataDir, other than . and .. and ${RESERVED_DATA_FILES.join(', ')} (kept there by the daemon)`);
  }

  const serial = valueAt(input, ['sources', 'serial']);
  if (Array.isArray(serial)) {
    serial.forEach((_port: unknown, i) => {
      const path = valueAt(serial, [i, 'path']);
      if (typeof path !== 'string' || path === '') return;
      const at = `${formatPath(['sources', 'serial', i, 'path'])}: ${formatValue(path)}`;
      if (CONTROL.test(path)) problems.push(`${at} is not allowed: expected a device path without control characters`);
      else if (!isAbsolute(path)) problems.push(`${at} is not allowed: expected an absolute device path, such as /dev/ttyUSB0 or /dev/serial/by-id/...`);
    });
  }
  problems.push(...checkFileKeys(input));
  problems.push(...checkUrls(input));
  return problems;
}

/** Keys that name a file the daemon reads: `certFile`, `caFile`, `tls.ca`, ... */
export function isFileKey(key: string, parent: PropertyKey | undefined): boolean {
  return /^[a-z]+File$/i.test(key) || (parent === 'tls' && ['ca', 'cert', 'key', 'clientCa'].includes(key));
}

function checkFileKeys(input: unknown): string[] {
  const problems: string[] = [];
  const walk = (v: unknown, path: PropertyKey[]): void => {
    if (v === null || typeof v !== 'object' || path.length > 8) return;
    for (const [key, child] of Object.entries(v)) {
      const here = [...path, Array.isArray(v) ? Number(key) : key];
      if (typeof child === 'string' && isFileKey(key, path[path.length - 1]) && CONTROL.test(child)) {
        problems.push(`${formatPath(here)}: ${formatValue(child)} is not allowed: expected a file path without control characters`);
      }
      walk(child, here);
    }
  };
  walk(input, []);
  return problems;
}
