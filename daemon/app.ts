/**
 * The composition root: builds the pipeline, the engine, the consumer
 * endpoint, the admin port, the embedded broker and the sources from one
 * frozen config, and stops them in the order that loses nothing it can keep.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Driver } from '../drivers/driver.js';
import { EmbeddedBroker } from '../drivers/mqtt/embedded-broker.js';
import { createDrivers } from '../drivers/registry.js';
import { Pipeline } from './core/pipeline.js';
import type { StreamSpec } from './core/stream.js';
import { Engine } from './engine.js';
import { WsListener } from './consumers/ws-listen.js';
import { AdminServer, type Health } from './observability/admin-server.js';
import { createShellCounters } from './observability/counters.js';
import { renderMetrics } from './observability/metrics.js';

export interface DaemonUrls {
  readonly consumers?: string;
  readonly admin?: string;
  readonly broker?: string;
}

export interface Daemon {
  readonly urls: DaemonUrls;
  readonly engine: Engine;
  /** Stops intake, waits up to the drain deadline for in-flight acks, closes everything. */
  stop(reason: string): Promise<void>;
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  const counters = createShellCounters();
  const defaults: StreamSpec = config.streamDefaults;
  const pipeline = new Pipeline({
    memoryBudgetBytes: config.limits.memoryBudgetBytes,
    maxStreams: config.limits.maxStreams,
    maxCredit: config.consumers.maxCredit,
    ackTimeoutMs: config.consumers.ackTimeoutMs,
    maxAttempts: config.consumers.maxAttempts,
    specFor: (name, proposed) => ({ ...(proposed ?? defaults), ...config.streams[name] }),
  });
  const engine = new Engine(pipeline, { log, now: () => performance.now(), wallNow: () => Date.now() });
  const drivers = createDrivers(config);
  let stopping = false;

  const health = (): Health => {
    const sources = drivers.map((d) => d.health());
    const reasons = sources.filter((s) => !s.up).map((s) => `source ${s.name} is down: ${s.detail}`);
    if (stopping) reasons.push('stopping');
    const t = pipeline.totals();
    return {
      healthy: reasons.length === 0,
      status: reasons.length === 0 ? 'ok' : 'degraded',
      reasons,
      sources,
      consumers: engine.consumerCount,
      buffered: t.buffered,
      inflight: t.inflight,
      heldBytes: t.heldBytes,
      memoryBudgetBytes: config.limits.memoryBudgetBytes,
    };
  };

  const started: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (const stop of started.reverse()) await stop();
  };
  const urls: { consumers?: string; admin?: string; broker?: string } = {};
  try {
    engine.start(config.consumers.ackTimeoutMs);
    started.push(() => engine.stop());

    if (config.admin.enabled) {
      const admin = new AdminServer(config.admin.host, config.admin.port, {
        metrics: () => renderMetrics({ pipeline, counters, consumers: () => engine.consumerCount }),
        health,
      });
      urls.admin = await admin.start();
      started.push(() => admin.stop());
    }

    let listener: WsListener | undefined;
    if (config.consumers.listen.enabled) {
      const c = config.consumers;
      listener = new WsListener({ ...c.listen, ...c, tokens: c.tokens }, { engine, log, counters });
      urls.consumers = await listener.start();
      const l = listener;
      started.push(() => {
        l.stopAccepting();
        l.closeAll();
      });
    }

    if (config.sources.embeddedBroker.enabled) {
      const broker = new EmbeddedBroker(config.sources.embeddedBroker, log);
      urls.broker = await broker.start();
      started.push(() => broker.stop());
    }

    for (const driver of drivers) {
      await driver.start(driverContext(driver, config, engine, counters, log));
      started.push(() => driver.stop());
    }

    log.info({ event: 'ready', ...urls, sources: drivers.map((d) => d.name) }, 'spillway ready');

    const stop = async (reason: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'stopping', reason, drainTimeoutMs: config.shutdown.drainTimeoutMs }, 'stopping: intake closed, waiting for in-flight acks');
      await stopIntake(drivers, log);
      listener?.stopAccepting();
      engine.stopSending();
      await engine.inflightDrained(AbortSignal.timeout(config.shutdown.drainTimeoutMs));
      const t = pipeline.totals();
      const owed = t.buffered + t.inflight;
      const fields = { event: 'stopped', buffered: t.buffered, inflight: t.inflight, ingested: t.ingested, acked: t.acked, dropped: t.dropped };
      // Without a spool, what is still owed at exit is lost: say so, with the count.
      if (owed > 0) log.error(fields, `stopping with ${owed} records still owed; they are lost (no spool configured)`);
      else log.info(fields, 'stopped with nothing owed');
      await unwind();
    };
    return { urls, engine, stop };
  } catch (err) {
    await unwind();
    throw err;
  }
}

async function stopIntake(drivers: readonly Driver[], log: Logger): Promise<void> {
  const results = await Promise.allSettled(drivers.map((d) => d.stop()));
  results.forEach((r, i) => {
    if (r.status === 'rejected') log.warn({ source: drivers[i]?.name, err: String(r.reason) }, 'source did not stop cleanly');
  });
}

function driverContext(driver: Driver, config: Config, engine: Engine, counters: ReturnType<typeof createShellCounters>, log: Logger) {
  const byPriority = new Map<number, StreamSpec>();
  return {
    log: log.child({ source: driver.name }),
    ingest: (stream: string, payload: Uint8Array, spec?: StreamSpec) => engine.ingest(stream, payload, spec),
    reject: (reason: string) => counters.inputRejected.inc([driver.name, reason]),
    streamSpec: (priority?: number): StreamSpec => {
      if (priority === undefined) return config.streamDefaults;
      let spec = byPriority.get(priority);
      if (spec === undefined) byPriority.set(priority, (spec = { ...config.streamDefaults, priority }));
      return spec;
    },
    maxPayloadBytes: config.limits.maxPayloadBytes,
  };
}
