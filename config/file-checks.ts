/**
 * What `run` reads or writes at start, checked before anything is opened so
 * that `spillway check-config` and `spillway run` refuse the same configs
 * with exit 78 (`loadConfigFile` calls this):
 *
 *   TLS files (`tls.ca/cert/key`, `tls.clientCa`, any `*File` key) exist,
 *   are regular files, and the service user can read them and search every
 *   directory above them;
 *   once they can all be read, what a TLS block names is usable: a `ca` or
 *   `clientCa` holds PEM certificates that parse, a `cert` and its `key`
 *   are a PEM certificate and the private key that matches it (the server
 *   or client would otherwise fail at start, or fail every handshake);
 *   an existing dataDir is a directory the service user can write in (a
 *   missing one is created by the daemon, or by systemd's StateDirectory=).
 *
 * The service user: when run as root and the system user `spillway` exists
 * (scripts/install.sh creates it; the unit runs as it), that user, with its
 * groups from /etc/group; otherwise whoever runs the check. Relative paths
 * are resolved against the working directory, as the daemon reads them.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
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
  const files = fileKeys(config);
  for (const { path, file } of files) {
    const problem = await fileProblem(resolve(cwd, file), who);
    if (problem !== undefined) problems.push(`${formatPath(path)}: ${formatValue(file)} is not allowed: ${problem}`);
  }
  if (problems.length === 0) problems.push(...(await tlsProblems(files, cwd)));
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

const PEM_CERTIFICATE = /-----BEGIN (TRUSTED )?CERTIFICATE-----[\s\S]*?-----END \1?CERTIFICATE-----/g;

/** What each TLS block's files hold, once they can all be read: CAs that parse, a certificate and the key that matches it. */
async function tlsProblems(files: ReadonlyArray<{ path: PropertyKey[]; file: string }>, cwd: string): Promise<string[]> {
  const problems: string[] = [];
  const blocks = new Map<string, Map<string, { path: PropertyKey[]; file: string; abs: string }>>();
  for (const f of files) {
    if (f.path.at(-2) !== 'tls') continue;
    const block = formatPath(f.path.slice(0, -1));
    const keys = blocks.get(block) ?? new Map();
    keys.set(String(f.path.at(-1)), { ...f, abs: resolve(cwd, f.file) });
    blocks.set(block, keys);
  }
  for (const keys of blocks.values()) {
    for (const name of ['ca', 'clientCa']) {
      const f = keys.get(name);
      if (f === undefined) continue;
      const text = await readFile(f.abs, 'latin1').catch((err: NodeJS.ErrnoException) => err);
      const problem = typeof text === 'string' ? caProblem(text, f.abs) : `${f.abs} cannot be read (${text.code ?? text.message}): expected a readable PEM file`;
      if (problem !== undefined) problems.push(`${formatPath(f.path)}: ${formatValue(f.file)} is not allowed: ${problem}`);
    }
    const cert = keys.get('cert');
    const key = keys.get('key');
    if (cert === undefined || key === undefined) continue;
    try {
      createSecureContext({ cert: await readFile(cert.abs), key: await readFile(key.abs) });
    } catch (err) {
      // Also a file that vanished since it was checked: its message says so.
      problems.push(
        `${formatPath(cert.path)}: ${formatValue(cert.file)} is not allowed: with key ${formatValue(key.file)} it is not a usable PEM certificate and matching private key (${(err as Error).message}): expected the certificate and its own unencrypted key`,
      );
    }
  }
  return problems;
}

function caProblem(text: string, abs: string): string | undefined {
  const certificates = text.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) return `${abs} holds no PEM certificate: expected one or more -----BEGIN CERTIFICATE----- blocks`;
  for (const [i, pem] of certificates.entries()) {
    // OpenSSL's TRUSTED CERTIFICATE (a certificate with trust settings) is taken as a CA as it is.
    if (pem.startsWith('-----BEGIN TRUSTED')) continue;
    try {
      new X509Certificate(pem);
    } catch (err) {
      return `${abs}: certificate ${i + 1} of ${certificates.length} cannot be parsed (${(err as Error).message}): expected PEM certificates`;
    }
  }
  return undefined;
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
