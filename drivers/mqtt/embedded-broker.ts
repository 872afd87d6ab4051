/**
 * The embedded MQTT broker (aedes) on a local TCP port, so a gateway needs
 * no separate Mosquitto. The daemon's own MQTT source subscribes to it like
 * any other broker, so its publishes take the same path as external ones.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
import { SpillwayError } from '../../daemon/errors.js';

export interface EmbeddedBrokerOptions {
  readonly host: string;
  readonly port: number;
}

export class EmbeddedBroker {
  readonly #opts: EmbeddedBrokerOptions;
  readonly #log: Logger;
  #broker: Aedes | undefined;
  #server: Server | undefined;

  constructor(opts: EmbeddedBrokerOptions, log: Logger) {
    this.#opts = opts;
    this.#log = log;
  }

  /** Returns the broker's URL. */
  async start(): Promise<string> {
    const broker = await Aedes.createBroker();
    this.#broker = broker;
    broker.on('clientError', (client, err) => this.#log.debug({ client: client.id, err: err.message }, 'embedded broker client error'));
    const server = createServer(broker.handle);
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new SpillwayError('LISTEN', `embedded MQTT broker cannot listen on ${this.#opts.host}:${this.#opts.port}: ${err.message}`, { cause: err })));
      server.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return `mqtt://${this.#opts.host}:${port}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    const broker = this.#broker;
    this.#server = undefined;
    this.#broker = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (broker !== undefined) await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    }
  }
}
