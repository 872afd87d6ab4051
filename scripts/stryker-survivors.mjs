// A Stryker reporter (stryker.config.mjs): every mutant that survives or gets no
// verdict is appended, as soon as it is tested, to the JSON report's name with
// -survivors.txt for .json (reports/mutation/<suite>-survivors.txt), so the
// survivors of a run of hours can be looked at while it runs.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { declareFactoryPlugin, PluginKind, commonTokens } from '@stryker-mutator/api/plugin';

function survivorReporter(options) {
  const file = (options.jsonReporter?.fileName ?? 'reports/mutation/mutation.json').replace(/\.json$/, '-survivors.txt');
  return {
    onDryRunCompleted() {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, '');
    },
    onMutantTested(m) {
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') return;
      const at = `${m.fileName}:${m.location.start.line}:${m.location.start.column + 1}`;
      appendFileSync(file, `${m.id}\t${m.status}\t${at}\t${m.mutatorName}\t${JSON.stringify(m.replacement)}\n`);
    },
  };
}
survivorReporter.inject = [commonTokens.options];

export const strykerPlugins = [declareFactoryPlugin(PluginKind.Reporter, 'survivors', survivorReporter)];
