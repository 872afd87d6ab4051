/**
 * The node flags of systemd/spillway.service's ExecStart (say
 * `--max-semi-space-size=2 --max-old-space-size=128`), so benches run the
 * daemon as it is installed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** dist/scripts/bench -> the checkout's systemd/. */
const UNIT = fileURLToPath(new URL('../../../systemd/spillway.service', import.meta.url));

export function unitNodeArgs(): string[] {
  const exec = /^ExecStart=\S+ (.*?) \S+cli\.js /m.exec(readFileSync(UNIT, 'utf8'));
  return exec?.[1]?.split(' ').filter((a) => a.startsWith('--')) ?? [];
}
