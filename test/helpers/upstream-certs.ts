/**
 * Certificates for the TLS tests, made with `openssl` in a temp dir: a CA,
 * a server certificate for 127.0.0.1 signed by it, a client certificate
 * signed by it, and a client certificate signed by another CA (a stranger).
 * Fails loudly when openssl is missing.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './tmp.js';

const run = promisify(execFile);
const OPENSSL = process.env['OPENSSL'] ?? 'openssl';

export interface TestCerts {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Signed by a CA the server does not trust. */
  readonly strangerCert: string;
  readonly strangerKey: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run(OPENSSL, [...args], { cwd });
  } catch (err) {
    const e = err as Error & { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`openssl not found (install the openssl package or set OPENSSL): ${e.message}`);
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`], dir);
}

async function makeLeaf(dir: string, name: string, ca: string, serial: number, ext?: string): Promise<void> {
  await openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  const extArgs = ext === undefined ? [] : ['-extfile', ext];
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(serial), '-out', `${name}.crt`, '-days', '2', ...extArgs], dir);
}

export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await makeTempDir('certs');
  await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await makeCa(dir, 'ca');
  await makeCa(dir, 'stranger-ca');
  await makeLeaf(dir, 'server', 'ca', 1, 'server.ext');
  await makeLeaf(dir, 'client', 'ca', 2);
  await makeLeaf(dir, 'stranger', 'stranger-ca', 3);
  const f = (n: string) => join(dir, n);
  return {
    dir,
    caCert: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    strangerCert: f('stranger.crt'),
    strangerKey: f('stranger.key'),
  };
}
