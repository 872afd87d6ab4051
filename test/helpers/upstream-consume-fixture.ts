/** `spillway consume` as a child process, before it is wired into the CLI: node upstream-consume-fixture.js ARGS... */
import { runConsume } from '../../daemon/consumers/consume-command.js';

runConsume(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`consume fixture: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
