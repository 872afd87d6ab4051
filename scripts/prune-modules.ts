/**
 * Prunes a production `node_modules` (after `npm ci --omit=dev`) to what the
 * daemon loads at run time. scripts/install.sh runs it on the staged install;
 * test/install-prune.test.ts checks that the daemon still starts from a
 * pruned tree.
 *
 *   node dist/scripts/prune-modules.js PROJECT_DIR [--dry-run]
 *
 * PROJECT_DIR holds package.json and node_modules. What goes, in order:
 *  1. packages only the install needs: better-sqlite3's `prebuild-install`
 *     (it downloads or builds the addon, never loaded after) and what only it
 *     pulls in, `node-addon-api` (C++ headers of @serialport/bindings-cpp),
 *     and `@types/*`. Found by walking `dependencies` from the project with
 *     Node's resolution and removing every package not reached;
 *  2. native build leftovers: better-sqlite3 keeps `lib/`, `package.json`,
 *     the license and `build/Release/better_sqlite3.node` (its SQLite sources
 *     in `deps/`, `src/` and the object files go); @serialport/bindings-cpp
 *     keeps only the prebuilds of this platform and CPU, and drops its C++ sources;
 *  3. what a package ships for other runtimes: mqtt's browser bundles
 *     (`dist/`: its `exports` give Node `build/`), yaml's `browser/` (Node
 *     takes the `node` condition, `dist/`), zod's TypeScript sources (`src/`) and
 *     its v3 copy (`zod` is v4; nothing imports `zod/v3`);
 *  4. in every package: type declarations, source maps, TypeScript sources,
 *     markdown other than licenses, and the top-level `test/`, `tests/`,
 *     `__tests__/`, `benchmarks/`, `example(s)/`, `docs/` and `.github/` folders.
 * Nothing outside PROJECT_DIR/node_modules is touched. Prints what it removed, in bytes.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Packages that are install-time only: their edges are not followed. */
const INSTALL_ONLY = new Set(['prebuild-install', 'node-addon-api']);
const isInstallOnly = (name: string) => INSTALL_ONLY.has(name) || name.startsWith('@types/');

const TOP_DIRS = new Set(['test', 'tests', '__tests__', 'benchmarks', 'example', 'examples', 'docs', '.github']);
const DROP_FILE = /(\.d\.[cm]?ts|\.map|(?<!\.d)\.[cm]?ts|\.md|\.markdown)$/i;
const KEEP_FILE = /^(licen[cs]e|copying|notice)/i;

export interface PruneReport {
  readonly removedBytes: number;
  readonly packagesRemoved: readonly string[];
  readonly paths: number;
}

interface Pkg {
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
}

function readPkg(dir: string): Pkg {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Pkg;
}

/** Node's resolution of `name` from inside `from`, within `root`'s node_modules. */
function resolvePkg(root: string, from: string, name: string): string | undefined {
  for (let dir = from; dir.length >= root.length; dir = resolve(dir, '..')) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root) break;
  }
  return undefined;
}

/** Every package directory under a node_modules folder, nested ones included. */
function allPackages(modules: string, out: string[] = []): string[] {
  if (!existsSync(modules)) return out;
  for (const e of readdirSync(modules, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const p = join(modules, e.name);
    if (e.name.startsWith('@')) {
      for (const s of readdirSync(p, { withFileTypes: true })) if (s.isDirectory()) visitPackage(join(p, s.name), out);
    } else visitPackage(p, out);
  }
  return out;
}

function visitPackage(dir: string, out: string[]): void {
  if (!existsSync(join(dir, 'package.json'))) return;
  out.push(dir);
  allPackages(join(dir, 'node_modules'), out);
}

function reachable(root: string): Set<string> {
  const seen = new Set<string>();
  const walk = (dir: string, names: readonly string[]) => {
    for (const name of names) {
      if (isInstallOnly(name)) continue;
      const p = resolvePkg(root, dir, name);
      if (p === undefined || seen.has(p)) continue; // an optional or peer dependency not installed
      seen.add(p);
      const pkg = readPkg(p);
      walk(p, [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    }
  };
  walk(root, Object.keys(readPkg(root).dependencies ?? {}));
  return seen;
}

function sizeOf(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of readdirSync(path)) total += sizeOf(join(path, e));
  return total;
}

class Remover {
  bytes = 0;
  paths = 0;
  readonly #dryRun: boolean;

  constructor(dryRun: boolean) {
    this.#dryRun = dryRun;
  }

  remove(path: string): void {
    if (!existsSync(path) && !isSymlink(path)) return;
    this.bytes += sizeOf(path);
    this.paths++;
    if (!this.#dryRun) rmSync(path, { recursive: true, force: true });
  }

  /** Removes everything in `dir` but the relative paths in `keep` (and the folders leading to them). */
  keepOnly(dir: string, keep: readonly string[]): void {
    if (!existsSync(dir)) return;
    const prune = (sub: string) => {
      for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
        const rel = sub === '' ? e.name : `${sub}/${e.name}`;
        if (keep.includes(rel)) continue;
        if (e.isDirectory() && keep.some((k) => k.startsWith(`${rel}/`))) prune(rel);
        else this.remove(join(dir, rel));
      }
    };
    prune('');
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false; // does not exist
  }
}

function trimFiles(dir: string, r: Remover, top: boolean): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'node_modules') continue; // nested packages are visited on their own
      if (top && TOP_DIRS.has(e.name)) r.remove(p);
      else trimFiles(p, r, false);
    } else if (e.isFile() && DROP_FILE.test(e.name) && !KEEP_FILE.test(e.name)) r.remove(p);
  }
}

export function pruneModules(projectDir: string, opts: { dryRun?: boolean } = {}): PruneReport {
  const root = resolve(projectDir);
  const modules = join(root, 'node_modules');
  if (!existsSync(modules)) throw new Error(`${modules} does not exist: run npm ci --omit=dev first`);
  const r = new Remover(opts.dryRun === true);
  const keep = reachable(root);
  const packagesRemoved: string[] = [];
  for (const p of allPackages(modules)) {
    if (keep.has(p)) continue;
    packagesRemoved.push(p.slice(modules.length + 1));
    r.remove(p);
  }
  // Scope folders left empty (@types).
  for (const e of readdirSync(modules)) if (e.startsWith('@') && !opts.dryRun && readdirSync(join(modules, e)).length === 0) rmSync(join(modules, e), { recursive: true });
  const at = (name: string) => join(modules, name);
  r.keepOnly(at('better-sqlite3'), ['package.json', 'LICENSE', 'lib', 'build/Release/better_sqlite3.node']);
  const bindings = at('@serialport/bindings-cpp');
  if (existsSync(join(bindings, 'prebuilds'))) {
    for (const e of readdirSync(join(bindings, 'prebuilds'))) {
      const [platform, archs = ''] = e.split('-');
      if (platform !== process.platform || !archs.split('+').includes(process.arch)) r.remove(join(bindings, 'prebuilds', e));
    }
  }
  for (const p of ['src', 'binding.gyp']) r.remove(join(bindings, p));
  for (const p of ['mqtt/dist', 'yaml/browser', 'zod/src', 'zod/v3']) r.remove(at(p));
  for (const p of allPackages(modules)) if (existsSync(p)) trimFiles(p, r, true);
  // Links to the binaries of removed packages.
  const bin = join(modules, '.bin');
  if (existsSync(bin)) {
    for (const e of readdirSync(bin)) {
      const link = join(bin, e);
      if (isSymlink(link) && !existsSync(resolve(bin, readlinkSync(link)))) r.remove(link);
    }
  }
  return { removedBytes: r.bytes, packagesRemoved, paths: r.paths };
}

function main(argv: readonly string[]): void {
  const dir = argv.find((a) => !a.startsWith('--'));
  if (dir === undefined || !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    console.error('usage: prune-modules.js PROJECT_DIR [--dry-run]');
    process.exit(64);
  }
  const before = sizeOf(join(dir, 'node_modules'));
  const report = pruneModules(dir, { dryRun: argv.includes('--dry-run') });
  const mb = (b: number) => (b / 1e6).toFixed(1);
  console.log(`prune-modules: ${argv.includes('--dry-run') ? 'would remove' : 'removed'} ${mb(report.removedBytes)} MB of ${mb(before)} MB (${report.paths} paths; install-only packages: ${report.packagesRemoved.join(', ') || 'none'})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
