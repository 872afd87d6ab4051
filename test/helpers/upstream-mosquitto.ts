/**
 * A real Mosquitto broker that can be stopped and started again on the same
 * port (a broker restart), optionally with persistence so that a persistent
 * subscriber's session and queued messages survive it. A thin wrapper over
 * mosquitto.ts; fails loudly when mosquitto is not installed.
 */
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { freePort } from './ports.js';
import { makeTempDir } from './tmp.js';

export interface RestartableMosquitto {
  readonly port: number;
  readonly url: string;
  /** Stops the broker (SIGTERM: with persistence it saves its state). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export interface RestartableOptions {
  /** Keep sessions and queued messages across a restart. */
  readonly persistence?: boolean;
  readonly extraConf?: readonly string[];
}

export async function startRestartableMosquitto(opts: RestartableOptions = {}): Promise<RestartableMosquitto> {
  const port = await freePort();
  const persistenceDir = opts.persistence === true ? await makeTempDir('upmosq-data') : undefined;
  const launch = () => startMosquitto([...(opts.extraConf ?? [])], { port, persistenceDir });
  let broker: Mosquitto | undefined = await launch();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      await broker?.stop();
      broker = undefined;
    },
    start: async () => {
      if (broker === undefined) broker = await launch();
    },
  };
}
