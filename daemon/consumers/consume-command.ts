/**
 * `spillway consume --url URL [--token T] [--credit N]`: the reference
 * consumer as a command. Prints each record as one JSON line on stdout (the
 * wire record: seq, stream, prio, ts, data, enc, attempt) and acks it once
 * the line was handed to stdout, keeping at most N records outstanding.
 * Loss notices and errors go to stderr as JSON lines, so stdout holds only
 * records.
 *
 * Exit: 0 on SIGINT/SIGTERM or when the daemon says `shutting_down`; 1 when
 * it cannot connect, is refused, the connection is lost (unless
 * `--reconnect`, which retries with backoff until a signal) or stdout is
 * gone; 64 on bad usage.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { SpillwayConsumer, type WireRecord } from '../client/consumer.js';
import { MAX_CREDIT_GRANT } from './protocol.js';

const EXIT_USAGE = 64;
const DEFAULT_CREDIT = 100;
const RECONNECT = { initialMs: 500, maxMs: 30_000 } as const;

export const CONSUME_USAGE = `usage: spillway consume --url URL [--group NAME | --tap] [--token T] [--credit N] [--name NAME] [--reconnect] [--ca FILE]
  --url URL     ws://HOST:PORT/v1/consume (wss:// with TLS)
  --group NAME  join this group: take (and ack) its records, shared with its other consumers
  --tap         watch only: see records as they are first delivered, take none (nothing acked)
  --token T     hello.token, when the daemon has tokens
  --credit N    records outstanding at most (default ${DEFAULT_CREDIT})
  --name NAME   consumer name in the daemon's logs (default consume-<host>)
  --reconnect   reconnect with backoff instead of exiting when the connection is lost
  --ca FILE     CA certificate to trust for wss://
`;

export async function runConsume(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        group: { type: 'string' },
        tap: { type: 'boolean' },
        credit: { type: 'string' },
        name: { type: 'string' },
        reconnect: { type: 'boolean' },
        ca: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${CONSUME_USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    process.stdout.write(CONSUME_USAGE);
    return 0;
  }
  if (values.tap === true && values.group !== undefined) {
    process.stderr.write(`--group and --tap go apart: a tap joins no group\n${CONSUME_USAGE}`);
    return EXIT_USAGE;
  }
  const credit = values.credit === undefined ? DEFAULT_CREDIT : Number(values.credit);
  if (values.url === undefined || !/^wss?:\/\/./.test(values.url) || !Number.isInteger(credit) || credit < 1 || credit > MAX_CREDIT_GRANT) {
    process.stderr.write(`${values.url === undefined ? '--url is required' : `--url must be a ws:// or wss:// URL and --credit an integer from 1 to ${MAX_CREDIT_GRANT}`}\n${CONSUME_USAGE}`);
    return EXIT_USAGE;
  }
  let ca: Buffer | undefined;
  if (values.ca !== undefined) {
    try {
      ca = await readFile(values.ca);
    } catch (err) {
      process.stderr.write(`--ca: cannot read ${values.ca}: ${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
  }

  const consumer = new SpillwayConsumer({
    url: values.url,
    name: values.name ?? `consume-${hostname()}`.slice(0, 128),
    token: values.token,
    ...(values.group === undefined ? {} : { group: values.group }),
    ...(values.tap === true ? { tap: true } : {}),
    credit,
    tls: ca === undefined ? undefined : { ca },
    reconnect: values.reconnect ? RECONNECT : undefined,
  });
  const stderrLine = (o: object) => process.stderr.write(`${JSON.stringify(o)}\n`);
  // Credit belongs to a connection: a batch printed after a reconnect is not acked on the new one (it is redelivered).
  let connection = 0;
  consumer.on('welcome', () => connection++);
  consumer.on('records', (records) => {
    const of = connection;
    void printLines(records).then((written) => {
      if (!written || of !== connection) return;
      // A tap takes nothing: no acks, only its credit back.
      if (values.tap === true) consumer.credit(records.length);
      else consumer.ackAndCredit(records.map((r) => r.seq));
    });
  });
  consumer.on('loss', (n) => stderrLine(n));
  consumer.on('serverError', (e) => stderrLine(e));

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  let stdoutGone = false;
  const onStdoutError = () => {
    stdoutGone = true;
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.stdout.once('error', onStdoutError);
  try {
    const end = await consumer.run(stop.signal);
    if (end.reason === 'aborted') return stdoutGone ? 1 : 0;
    if (end.serverError?.code === 'shutting_down') return 0;
    stderrLine({ type: 'closed', code: end.code });
    return 1;
  } catch (err) {
    stderrLine({ type: 'failed', message: (err as Error).message });
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onStdoutError);
  }
}

/**
 * One line per record; resolves true once stdout took them (then they are
 * acked, with as much credit again). False when stdout is gone (a pipe whose
 * reader left): no ack, the daemon redelivers them after the close.
 */
function printLines(records: readonly WireRecord[]): Promise<boolean> {
  let text = '';
  for (const r of records) text += `${JSON.stringify(r)}\n`;
  return new Promise<boolean>((resolve) => process.stdout.write(text, (err) => resolve(err === undefined || err === null)));
}
