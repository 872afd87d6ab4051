/**
 * Writes docs/CONFIG.md, the configuration reference, from the schema
 * (config/docs.ts). `--check` writes nothing and exits 1 when the file
 * differs (for CI; test/config-docs.test.ts checks the same).
 *
 *   npx tsc -p . && node dist/scripts/gen-config-docs.js [--check]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../config/docs.js';

/** dist/scripts/ → the repository root. */
export const CONFIG_DOCS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'CONFIG.md');

async function main(argv: readonly string[]): Promise<number> {
  const text = renderConfigDocs();
  if (argv.includes('--check')) {
    const current = await readFile(CONFIG_DOCS, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    if (current === text) return 0;
    process.stderr.write(`${CONFIG_DOCS} is out of date: run node dist/scripts/gen-config-docs.js\n`);
    return 1;
  }
  await writeFile(CONFIG_DOCS, text);
  process.stdout.write(`wrote ${CONFIG_DOCS}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`gen-config-docs: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
