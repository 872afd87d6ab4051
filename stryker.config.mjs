// Mutation testing of the pure core (docs/MUTATION.md). `npm run mutate`;
// one file: `npm run mutate -- --mutate daemon/core/inflight.ts`.
// Not part of `npm test` or CI: a full run takes far longer than the CI budget.
//
// The command runner re-runs the compiled tests once per mutant. Stryker
// writes every mutant into the sources at once (mutant schemata) and picks
// one per run through __STRYKER_ACTIVE_MUTANT__, so the sandbox is compiled
// once (buildCommand) and each mutant costs one `node --test` run.
const suite = process.env.SPILLWAY_MUTATE ?? 'core';

const suites = {
  core: {
    mutate: ['daemon/core/**/*.ts', '!daemon/core/**/*.test.ts', '!daemon/core/pipeline-types.ts'],
    // Fastest first: most mutants are killed by a file that runs in well under a second (the
    // shares' property is last: under Stryker's instrumentation it is the slowest).
    tests: ['parts', 'groups-examples', 'reliability', 'entry-points', 'fifo-contract', 'groups', 'pipeline', 'shares']
      .map((name) => `dist/daemon/core/${name}.test.js`),
  },
  spool: {
    mutate: ['daemon/spool/**/*.ts', '!daemon/spool/**/*.test.ts', '!daemon/spool/spool-port.ts', '!daemon/spool/checkpoint-worker.ts'],
    // spool-damage-process starts a real daemon on a damaged spool (3 s): the sandbox builds the whole
    // daemon for it. Not spool-process (50 s a run) nor the full-disk test (a run killed on timeout
    // would leave its tmpfs mounted).
    tests: ['dist/daemon/spool/spool.test.js', 'dist/daemon/spool/disk-room.test.js', 'dist/daemon/spool/wal-guard.test.js', 'dist/daemon/spool/checkpointer.test.js', 'dist/test/seq-state.test.js', 'dist/test/atomic-file.test.js', 'dist/test/maintenance.test.js', 'dist/test/spool-contract.test.js', 'dist/test/spool-salvage.test.js', 'dist/test/spool-damage-process.test.js'],
    build: 'tsc -p tsconfig.json',
  },
};
const chosen = suites[suite];
if (chosen === undefined) throw new Error(`SPILLWAY_MUTATE=${suite}: expected one of ${Object.keys(suites).join(', ')}`);

export default {
  testRunner: 'command',
  // One file at a time, stopping at the first that fails (scripts/mutant-tests.ts).
  commandRunner: { command: `node dist/scripts/mutant-tests.js ${chosen.tests.join(' ')}` },
  buildCommand: chosen.build ?? 'tsc -p tsconfig.mutate.json',
  mutate: chosen.mutate,
  // The mutated sources carry `// @ts-nocheck`: tsc compiles every mutant at once.
  disableTypeChecks: 'daemon/{core,spool}/**/*.ts',
  coverageAnalysis: 'off',
  ignorePatterns: ['dist', 'var', 'reports', 'docs', '.stryker-tmp*'],
  // Two shared cores: one test run at a time keeps timings honest for the other users of the machine.
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 1),
  // A mutant counts as detected when its run times out. On a loaded machine a clean run of the
  // core tests took from 2.6 s to 18 s (load average 13 on 2 cores): with a short timeout, slow
  // but passing runs were counted as detected (a `>=` mutant in inflight.ts, checked by hand).
  timeoutMS: 45_000,
  plugins: ['@stryker-mutator/*', './scripts/stryker-survivors.mjs'],
  reporters: ['clear-text', 'progress', 'json', 'html', 'survivors'],
  jsonReporter: { fileName: `reports/mutation/${suite}.json` },
  htmlReporter: { fileName: `reports/mutation/${suite}.html` },
  thresholds: { high: 90, low: 85, break: null },
  // One sandbox folder per suite: a run deletes its whole folder when it ends.
  tempDirName: `.stryker-tmp-${suite}`,
  cleanTempDir: true,
};
