/**
 * The embedded MQTT broker (aedes) on a local TCP port, so a gateway needs
 * no separate Mosquitto. The daemon's own MQTT source subscribes to it like
 * any other broker, so its publishes take the same path as external ones.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import type { Logger } from 'pino';
import { tokenMatches } from '../../daemon/consumers/tokens.js';
import { SpillwayError } from '../../daemon/errors.js';

export interface EmbeddedBrokerOptions {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly maxPayloadBytes: number;
}

export class EmbeddedBroker {
  readonly #opts: EmbeddedBrokerOptions;
  readonly #log: Logger;
  #broker: Aedes | undefined;
  #server: Server | undefined;

  readonly #onRefused: (reason: string) => void;

  /** `onRefused` counts what the broker turns away (spillway_input_rejected_total). */
  constructor(opts: EmbeddedBrokerOptions, log: Logger, onRefused: (reason: string) => void) {
    this.#opts = opts;
    this.#log = log;
    this.#onRefused = onRefused;
  }

  /** Returns the broker's URL. */
  async start(): Promise<string> {
    const { username, password, maxPayloadBytes } = this.#opts;
    const options: AedesOptions = {
      // The packet is parsed by then; refusing it keeps it out of the pipeline and the broker's queues.
      authorizePublish: (client, packet, done) => {
        if (packet.payload.length > maxPayloadBytes) {
          this.#onRefused('oversized');
          this.#log.debug({ client: client?.id, topic: packet.topic, bytes: packet.payload.length }, 'embedded broker refused an oversized publish');
          done(new Error(`payload of ${packet.payload.length} bytes exceeds ${maxPayloadBytes}`));
          return;
        }
        done(null);
      },
    };
    // aedes's own `authenticate` lets everyone in; replace it only when a login is configured.
    if (username !== undefined) {
      options.authenticate = (_client, user, pass, done) => {
        const ok = user !== undefined && pass !== undefined && tokenMatches(user, [username]) && tokenMatches(pass.toString('utf8'), [password ?? '']);
        if (!ok) this.#onRefused('unauthorized');
        done(null, ok);
      };
    }
    const broker = await Aedes.createBroker(options);
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
