/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): self time by
 * function (name + url:line), and by where the code lives (spillway's own
 * files, a package in node_modules, node internals, GC/idle/program).
 *
 *   node dist/scripts/bench/cpuprofile-top.js FILE.cpuprofile... [--top 25]
 *
 * Self time of a sample is the gap to the next sample (as DevTools counts it).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

type Totals = Map<string, number>;

function add(m: Totals, key: string, us: number): void {
  m.set(key, (m.get(key) ?? 0) + us);
}

/** Where a frame's code lives: `spillway:daemon/...`, `pkg:ws`, `node:internal`, or a V8 pseudo-frame. */
function owner(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : 'native';
  if (url.startsWith('node:')) return 'node:internal';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return `pkg:${pkg[1]}`;
  const own = /\/dist\/(.+)$/.exec(url);
  return own !== null ? `spillway:${own[1]}` : url;
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/');
}

function aggregate(p: Profile, byFunction: Totals, byOwner: Totals): number {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i + 1] ?? 0;
    const frame = nodes.get(p.samples[i] as number)?.callFrame;
    if (frame === undefined) continue;
    const name = frame.functionName || '(anonymous)';
    add(byFunction, `${name}  ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`, us);
    add(byOwner, owner(frame.url, name), us);
    total += us;
  }
  return total;
}

/** Percentages are of busy time: everything but `(idle)`. */
function print(title: string, m: Totals, busy: number, top: number): void {
  console.log(`\n${title}\n      ms  busy%`);
  const rows = [...m.entries()].filter(([key]) => !key.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [key, us] of rows) console.log(`${(us / 1000).toFixed(0).padStart(8)} ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${key}`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  if (positionals.length === 0) throw new Error('usage: cpuprofile-top.js FILE.cpuprofile... [--top N]');
  const byFunction: Totals = new Map();
  const byOwner: Totals = new Map();
  let total = 0;
  for (const file of positionals) total += aggregate(JSON.parse(await readFile(file, 'utf8')) as Profile, byFunction, byOwner);
  const busy = total - (byOwner.get('(idle)') ?? 0);
  console.log(`${positionals.length} profile(s): ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy`);
  print('self time by function', byFunction, busy, Number(values.top));
  print('self time by owner', byOwner, busy, Number(values.top));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
