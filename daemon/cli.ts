#!/usr/bin/env node
/**
 * The `spillway` command:
 *   spillway run [--config FILE]     run the daemon (embedded defaults without --config)
 *   spillway check-config FILE       exit 0, or 78 listing every problem
 */
import { parseArgs } from 'node:util';
import { loadConfigFile, parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Daemon } from './app.js';
import { ConfigError, EXIT_CONFIG, SpillwayError } from './errors.js';
import { createLogger, type Logger } from './observability/log.js';


const USAGE = `usage:
  spillway run [--config FILE]     run the daemon (embedded defaults without --config)
  spillway check-config FILE       validate a config file (exit 0, or 78 with every problem)
  spillway consume --url URL [--group NAME | --tap] [--token T] [--credit N]
                                   print records as JSON lines and ack them (--help for more)
  spillway status [--admin URL | --config FILE] [--json]
                                   a running daemon's state (exit 0 ok, 1 degraded, 69 unreachable)
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'consume') {
    const { runConsume } = await import('./consumers/consume-command.js');
    return runConsume(argv.slice(1));
  }
  if (argv[0] === 'status') {
    const { runStatus } = await import('./observability/status-command.js');
    return runStatus(argv.slice(1));
  }
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 64;
  }
  switch (command) {
    case 'run':
      return run(values.config);
    case 'check-config': {
      const file = rest[0] ?? values.config;
      if (file === undefined) {
        process.stderr.write(USAGE);
        return 64;
      }
      try {
        await loadConfigFile(file);
        process.stdout.write(`${file}: ok\n`);
        return 0;
      } catch (err) {
        process.stderr.write(`${file}: ${(err as Error).message}\n`);
        return err instanceof SpillwayError && (err.code === 'CONFIG_INVALID' || err.code === 'CONFIG_READ') ? EXIT_CONFIG : 1;
      }
    }
    default:
      process.stderr.write(`unknown command ${command}\n${USAGE}`);
      return 64;
  }
}

async function run(configPath: string | undefined): Promise<number> {
  let config: Config;
  try {
    config = configPath === undefined ? parseConfig({}) : await loadConfigFile(configPath);
  } catch (err) {
    createLogger('info').fatal({ event: 'config_invalid', file: configPath, problems: err instanceof ConfigError ? err.problems : undefined }, (err as Error).message);
    return EXIT_CONFIG;
  }
  const log = createLogger(config.log.level);
  // Signals are handled from here on, so one that arrives while starting is a clean stop too.
  let daemon: Daemon | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  let signals = 0;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const stop = (d: Daemon, signal: NodeJS.Signals) =>
    d.stop(signal).then(
      () => finish(0),
      (err: unknown) => {
        log.error({ event: 'stop_failed', err: String(err) }, 'error while stopping');
        finish(1);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ event: 'forced_exit', signal }, 'second signal: exiting without waiting');
      finish(1);
    } else if (daemon === undefined) stopRequested = signal;
    else void stop(daemon, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    if (daemon !== undefined) void reload(daemon, configPath, log);
  });
  try {
    // Loaded here, not at the top: check-config and status never need SQLite or MQTT.
    const { startDaemon } = await import('./app.js');
    daemon = await startDaemon(config, log);
  } catch (err) {
    const code = (err as SpillwayError).code;
    log.fatal({ event: 'start_failed', code, err: (err as Error).message }, 'spillway could not start');
    // A config file (a TLS file, say) that went missing after the check is still a config problem: not restarted.
    return code === 'CONFIG_READ' || code === 'CONFIG_INVALID' ? EXIT_CONFIG : 1;
  }
  if (stopRequested !== undefined) void stop(daemon, stopRequested);
  return finished;
}

/** SIGHUP: re-read the config file and apply what can change live; a bad file changes nothing. */
async function reload(daemon: Daemon, configPath: string | undefined, log: Logger): Promise<void> {
  if (configPath === undefined) {
    log.warn({ event: 'reload_refused' }, 'SIGHUP: running on embedded defaults, there is no config file to reload');
    return;
  }
  try {
    daemon.reload(await loadConfigFile(configPath));
  } catch (err) {
    log.error(
      { event: 'reload_refused', file: configPath, problems: err instanceof ConfigError ? err.problems : undefined },
      `config reload refused, the running config stays: ${(err as Error).message}`,
    );
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`spillway: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
