/**
 * Reads the PEM files a config names (certificates, keys, CAs) once, at
 * start. A file that cannot be read stops the start with an error that names
 * the config key and the path: the operator must act, and a daemon that
 * silently served plain text instead of TLS would be worse.
 */
import { readFile } from 'node:fs/promises';
import { SpillwayError } from '../errors.js';
import type { ClientTlsConfig } from './config.js';

/** `key` is the config key that named the file, e.g. `consumers.listen.tls.cert`. */
export async function readPemFile(file: string, key: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new SpillwayError('CONFIG_READ', `${key}: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Like `readPemFile`, for an optional key. */
export async function readOptionalPemFile(file: string | undefined, key: string): Promise<Buffer | undefined> {
  return file === undefined ? undefined : readPemFile(file, key);
}

export interface ClientTlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** The files of a `tls: {ca, cert, key}` block (dial mode, the MQTT upstream); `key` names the block, e.g. `consumers.dial[0].tls`. */
export async function readClientTls(tls: ClientTlsConfig | undefined, key: string): Promise<ClientTlsMaterial> {
  if (tls === undefined) return {};
  // One after another: when several cannot be read, the first is named, always the same one.
  const ca = await readOptionalPemFile(tls.ca, `${key}.ca`);
  const cert = await readOptionalPemFile(tls.cert, `${key}.cert`);
  const privateKey = await readOptionalPemFile(tls.key, `${key}.key`);
  return { ca, cert, key: privateKey };
}
