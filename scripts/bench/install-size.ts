/**
 * The production install: package.json and package-lock.json copied to a
 * temp dir, `npm ci --omit=dev` there (better-sqlite3 compiles: a minute or
 * two; BENCH_SKIP_INSTALL=1 skips it and reports dist/ only), then the
 * apparent size of node_modules (`du -sb`) plus dist/ without dist/test and
 * source maps. Prints the biggest packages.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fmtMiB, MiB, type BenchLine } from './stats.js';

const TARGET = 40 * MiB;
const TOP = 10;
/** dist/scripts/bench -> the project root. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

async function dirBytes(dir: string, skip: (path: string) => boolean): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (skip(p)) continue;
    if (e.isDirectory()) total += await dirBytes(p, skip);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}

async function duBytes(cwd: string, args: string[]): Promise<Array<[string, number]>> {
  const { stdout } = await promisify(execFile)('sh', ['-c', `du -sb ${args.join(' ')} 2>/dev/null || true`], { cwd, maxBuffer: 16 * MiB });
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [size, path] = l.split('\t');
      return [path as string, Number(size)];
    });
}

export async function runInstallSize(): Promise<BenchLine[]> {
  const dist = join(ROOT, 'dist');
  const distBytes = await dirBytes(dist, (p) => p === join(dist, 'test') || p.endsWith('.map'));
  console.log(`dist/ without dist/test and *.map: ${fmtMiB(distBytes)}`);
  if (process.env['BENCH_SKIP_INSTALL'] === '1') {
    return [{ bench: 'install size', measured: `${fmtMiB(distBytes)} dist`, baseline: '-', note: 'npm ci skipped (BENCH_SKIP_INSTALL=1)' }];
  }
  const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-install-'));
  try {
    await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
    await copyFile(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
    const t0 = Date.now();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`npm ci exited ${code}`);
    const installS = (Date.now() - t0) / 1000;
    const [[, modules] = ['', 0]] = await duBytes(dir, ['node_modules']);
    const packages = (await duBytes(join(dir, 'node_modules'), ['[!@.]*', '@*/*'])).sort((a, b) => b[1] - a[1]);
    const total = modules + distBytes;
    console.log(`npm ci --omit=dev: ${installS.toFixed(0)} s; node_modules ${fmtMiB(modules)} + dist ${fmtMiB(distBytes)} = ${fmtMiB(total)} (target <= ${fmtMiB(TARGET)}: ${total <= TARGET ? 'met' : 'MISSED'})`);
    console.log(`${packages.length} top-level packages; biggest:`);
    for (const [name, bytes] of packages.slice(0, TOP)) console.log(`  ${fmtMiB(bytes).padStart(10)}  ${name}`);
    const top = packages.slice(0, 3).map(([name, bytes]) => `${name} ${fmtMiB(bytes)}`).join(', ');
    return [
      {
        bench: 'install size',
        measured: fmtMiB(total),
        baseline: '-',
        note: `node_modules ${fmtMiB(modules)} + dist ${fmtMiB(distBytes)}, target <= ${fmtMiB(TARGET)} (${total <= TARGET ? 'met' : 'MISSED'}); biggest: ${top}`,
      },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
