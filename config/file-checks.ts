/**
 * What `run` reads or writes at start, checked before anything is opened so
 * that `spillway check-config` and `spillway run` refuse the same configs
 * with exit 78 (`loadConfigFile` calls this):
 *
 *   TLS files (`tls.ca/cert/key`, `tls.clientCa`, any `*File` key) exist,
 *   are regular files, and the service user can read them and search every
 *   directory above them;
 *   an existing dataDir is a directory the service user can write in (a
 *   missing one is created by the daemon, or by systemd's StateDirectory=).
 *
 * The service user: when run as root and the system user `spillway` exists
 * (scripts/install.sh creates it; the unit runs as it), that user, with its
 * groups from /etc/group; otherwise whoever runs the check. Relative paths
 * are resolved against the working directory, as the daemon reads them.
 */
import { readFileSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { formatPath, formatValue } from './describe-issue.js';
import { isFileKey } from './path-checks.js';

/** The system user the unit runs as (systemd/spillway.service `User=`). */
export const SERVICE_USER = 'spillway';

export interface Reader {
  /** For messages: `the service user spillway (uid 999)`. */
  readonly label: string;
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

/** Who will read the files: the service user when root checks for it, else the current user. */
export function serviceReader(passwd = '/etc/passwd', group = '/etc/group'): Reader {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  if (uid === 0) {
    const entry = readLines(passwd)
      .map((l) => l.split(':'))
      .find((f) => f[0] === SERVICE_USER);
    if (entry !== undefined) {
      const u = Number(entry[2]);
      const g = Number(entry[3]);
      const groups = readLines(group)
        .map((l) => l.split(':'))
        .filter((f) => Number(f[2]) === g || (f[3] ?? '').split(',').includes(SERVICE_USER))
        .map((f) => Number(f[2]));
      return { label: `the service user ${SERVICE_USER} (uid ${u})`, uid: u, gid: g, groups };
    }
  }
  return { label: `uid ${uid}`, uid, gid, groups: process.getgroups?.() ?? [gid] };
}

/** Whether `who` has the permission bits `want` (4 read, 2 write, 1 search) on a file with these stats. */
export function permits(info: Pick<Stats, 'mode' | 'uid' | 'gid'>, who: Reader, want: number): boolean {
  // root reads, writes and searches whatever the mode says (CAP_DAC_OVERRIDE).
  if (who.uid === 0) return true;
  const shift = info.uid === who.uid ? 6 : info.gid === who.gid || who.groups.includes(info.gid) ? 3 : 0;
  return ((info.mode >> shift) & want) === want;
}

export async function checkFiles(config: unknown, cwd: string, who: Reader = serviceReader()): Promise<string[]> {
  const problems: string[] = [];
  for (const { path, file } of fileKeys(config)) {
    const problem = await fileProblem(resolve(cwd, file), who);
    if (problem !== undefined) problems.push(`${formatPath(path)}: ${formatValue(file)} is not allowed: ${problem}`);
  }
  const dataDir = (config as { dataDir?: unknown }).dataDir;
  if (typeof dataDir === 'string') {
    const dir = resolve(cwd, dataDir);
    const info = await stat(dir).catch(() => undefined);
    if (info?.isDirectory() === true && !(permits(info, who, 2) && permits(info, who, 1))) {
      problems.push(`dataDir: ${formatValue(dataDir)} is not allowed: ${who.label} cannot write in it (mode ${octal(info.mode)}, owner ${info.uid}:${info.gid}); expected a directory it owns, such as systemd's StateDirectory=`);
    }
  }
  return problems;
}

/** Every string under a file key, with its key path. */
function fileKeys(config: unknown): Array<{ path: PropertyKey[]; file: string }> {
  const out: Array<{ path: PropertyKey[]; file: string }> = [];
  const walk = (v: unknown, path: PropertyKey[]): void => {
    if (v === null || typeof v !== 'object' || path.length > 8) return;
    for (const [key, child] of Object.entries(v)) {
      const here = [...path, Array.isArray(v) ? Number(key) : key];
      if (typeof child === 'string' && isFileKey(key, path[path.length - 1])) out.push({ path: here, file: child });
      else walk(child, here);
    }
  };
  walk(config, []);
  return out;
}

async function fileProblem(file: string, who: Reader): Promise<string | undefined> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${file} does not exist: expected a readable PEM file`;
    if (code === 'EACCES') return `${file} cannot be reached by whoever runs this check (${code}): expected a readable PEM file`;
    return `${file} cannot be read (${code ?? (err as Error).message}): expected a readable PEM file`;
  }
  if (!info.isFile()) return `${file} is not a regular file: expected a readable PEM file`;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const d = await stat(dir);
    if (!permits(d, who, 1)) return `${who.label} cannot reach ${file}: the directory ${dir} (mode ${octal(d.mode)}, owner ${d.uid}:${d.gid}) does not let it in`;
    if (dir === dirname(dir)) break;
  }
  if (!permits(info, who, 4)) return `${who.label} cannot read ${file} (mode ${octal(info.mode)}, owner ${info.uid}:${info.gid}): expected a file it can read (chgrp ${SERVICE_USER} and chmod g+r, for a key)`;
  return undefined;
}

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}
