/**
 * The composition root: builds the pipeline, the engine, the consumer
 * endpoint, the admin port, the embedded broker and the sources from one
 * frozen config, and stops them in the order that loses nothing it can keep.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Driver } from '../drivers/driver.js';
import { createDrivers } from '../drivers/registry.js';
import { Pipeline } from './core/pipeline.js';
import type { StreamSpec } from './core/stream.js';
import { Engine } from './engine.js';
import { WsListener } from './consumers/ws-listen.js';
import { AdminServer, type Health } from './observability/admin-server.js';
import { createShellCounters } from './observability/counters.js';
import { renderMetrics } from './observability/metrics.js';
import { Checkpointer } from './spool/checkpointer.js';
import { Maintenance } from './spool/maintenance.js';
import { SeqState } from './spool/seq-state.js';
import { SqliteSpool } from './spool/sqlite-spool.js';

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

  // The spool and the seq reservation: opened before anything is accepted.
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const seq = SeqState.load(dataDir);
  const t0 = performance.now();
  const opened = SqliteSpool.open({ file: join(dataDir, config.spool.file), synchronous: config.spool.synchronous });
  const spool = opened.spool;
  let quarantined = 0;
  if (opened.quarantined !== undefined) {
    quarantined++;
    log.error({ event: 'spool_quarantined', movedTo: opened.quarantined.path, reason: opened.quarantined.reason }, 'spool file was corrupt: moved aside, starting with an empty spool');
  }
  const pipeline = new Pipeline({
    memoryBudgetBytes: config.limits.memoryBudgetBytes,
    maxStreams: config.limits.maxStreams,
    maxCredit: config.consumers.maxCredit,
    ackTimeoutMs: config.consumers.ackTimeoutMs,
    maxAttempts: config.consumers.maxAttempts,
    specFor: (name, proposed) => ({ ...(proposed ?? defaults), ...config.streams[name] }),
    firstSeq: seq.reserved,
    spool,
    spoolQuotaBytes: config.spool.quotaBytes,
    durable: config.durability === 'durable',
    spillBatchRecords: config.spool.spillBatchRecords,
    replayBatchRecords: config.spool.replayBatchRecords,
    reservedShares: Object.fromEntries(Object.entries(config.limits.reservedShares).map(([p, share]) => [Number(p), share])),
  });
  const recovered = pipeline.recover();
  log.info({ event: 'spool_opened', file: spool.file, recovered, nextSeq: pipeline.nextSeq, ms: Math.round(performance.now() - t0) }, recovered > 0 ? `recovered ${recovered} records from the spool` : 'spool opened');
  const startWall = Date.now();
  const startMono = performance.now();
  const engine = new Engine(pipeline, {
    log,
    now: () => performance.now(),
    wallNow: () => Date.now(),
    ageNow: () => startWall + (performance.now() - startMono),
    reserveSeq: (next) => seq.ensure(next),
  });
  const checkpointer = new Checkpointer(spool.file);
  const drivers = await createDrivers(config);
  let stopping = false;
  let spoolFailuresSeen = 0;
  let spoolFailingUntil = 0;

  const health = (): Health => {
    const sources = drivers.map((d) => d.health());
    const reasons = sources.filter((s) => !s.up).map((s) => `source ${s.name} is down: ${s.detail}`);
    if (stopping) reasons.push('stopping');
    const t = pipeline.totals();
    if (t.spoolFailures > spoolFailuresSeen) {
      spoolFailuresSeen = t.spoolFailures;
      spoolFailingUntil = performance.now() + 60_000;
    }
    if (performance.now() < spoolFailingUntil) reasons.push('spool writes are failing (disk full or I/O error)');
    return {
      healthy: reasons.length === 0,
      status: reasons.length === 0 ? 'ok' : 'degraded',
      reasons,
      sources,
      consumers: engine.consumerCount,
      buffered: t.buffered,
      spooled: t.spooled,
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
  started.push(async () => {
    await checkpointer.close();
    spool.close();
  });
  try {
    engine.start(config.consumers.ackTimeoutMs);
    started.push(() => engine.stop());
    const maintenance = new Maintenance(config.spool, spool, checkpointer, engine, log);
    started.push(() => maintenance.stop());

    if (config.admin.enabled) {
      const admin = new AdminServer(config.admin.host, config.admin.port, {
        metrics: () => renderMetrics({ pipeline, counters, consumers: () => engine.consumerCount, spoolQuarantined: () => quarantined }),
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
      // Loaded only when enabled: aedes costs several MB of RSS on a Pi.
      const { EmbeddedBroker } = await import('../drivers/mqtt/embedded-broker.js');
      const broker = new EmbeddedBroker(config.sources.embeddedBroker, log, (reason) => counters.inputRejected.inc(['embedded-broker', reason]));
      urls.broker = await broker.start();
      started.push(() => broker.stop());
    }

    for (const driver of drivers) {
      await driver.start(driverContext(driver, config, engine, counters, log));
      started.push(() => driver.stop());
    }
    engine.onRoom(() => {
      for (const d of drivers) d.resume?.();
    });

    log.info({ event: 'ready', ...urls, sources: drivers.map((d) => d.name) }, 'spillway ready');

    const stop = async (reason: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'stopping', reason, drainTimeoutMs: config.shutdown.drainTimeoutMs }, 'stopping: intake closed, waiting for in-flight acks');
      await stopIntake(drivers, log);
      listener?.stopAccepting();
      engine.stopSending();
      await engine.inflightDrained(AbortSignal.timeout(config.shutdown.drainTimeoutMs));
      engine.reportDrops();
      const t = pipeline.totals();
      const fields = { event: 'stopped', buffered: t.buffered, spooled: t.spooled, inflight: t.inflight, recovered: t.recovered, ingested: t.ingested, acked: t.acked, dropped: t.dropped };
      try {
        const written = pipeline.persist();
        engine.freeze();
        log.info({ ...fields, written }, `stopped; ${t.buffered + t.spooled + t.inflight} records still owed are kept in the spool for the next start`);
      } catch (err) {
        engine.freeze();
        log.error({ ...fields, err: (err as Error).message }, `stopping: ${t.buffered + t.inflight} records in memory could not be written to the spool and are lost`);
      }
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
