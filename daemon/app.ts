/**
 * The composition root: builds the pipeline, the engine, the consumer
 * endpoint, the admin port and the sources (the embedded broker among them) from one
 * frozen config, and stops them in the order that loses nothing it can keep.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Driver, DriverContext } from '../drivers/driver.js';
import { createDrivers } from '../drivers/registry.js';
import { Pipeline } from './core/pipeline.js';
import { Engine } from './engine.js';
import { pipelineOptions, reservedShares } from './pipeline-options.js';
import { changedKeys, restartKeys } from './reload.js';
import { createLossNotices } from './consumers/loss-notices.js';
import { createWsDial } from './consumers/ws-dial.js';
import { WsListener, type ListenOptions } from './consumers/ws-listen.js';
import type { MqttUpstreams } from './upstreams/mqtt-upstream.js';
import { AdminServer } from './observability/admin-server.js';
import { renderCharts } from './observability/charts.js';
import { HealthJudge } from './observability/health.js';
import { LoopDelayWindow } from './observability/process-metrics.js';
import { SampleRing, takeSample } from './observability/samples.js';
import { disableMqttNumberCache } from './mqtt-number-cache.js';
import { createShellCounters, type ShellCounters } from './observability/counters.js';
import { renderMetrics } from './observability/metrics.js';
import { buildStatus } from './observability/status.js';
import { createSdNotify } from './observability/sd-notify.js';
import type { UplinkState } from './observability/uplink.js';
import { PipelineWatch } from './observability/watchdog.js';
import { Checkpointer } from './spool/checkpointer.js';
import { Maintenance } from './spool/maintenance.js';
import { SeqState } from './spool/seq-state.js';
import { SqliteSpool } from './spool/sqlite-spool.js';

export interface DaemonUrls {
  readonly consumers?: string;
  readonly admin?: string;
  readonly broker?: string;
}

export interface ReloadResult {
  readonly ok: boolean;
  /** Keys whose values changed. */
  readonly changed: readonly string[];
  /** Changed keys that only a restart can apply (then nothing was applied). */
  readonly needRestart: readonly string[];
}

export interface Daemon {
  readonly urls: DaemonUrls;
  readonly engine: Engine;
  /** Applies a new config live (SIGHUP), or refuses it whole if a key needs a restart. */
  reload(next: Config): ReloadResult;
  /** Stops intake, waits up to the drain deadline for in-flight acks, closes everything. */
  stop(reason: string): Promise<void>;
}

const NO_MQTT_UPSTREAMS: MqttUpstreams = { upstreams: [], start: async () => {}, stopReconnecting: () => {}, stop: async () => {} };

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  // Before the embedded broker, an MQTT source or upstream writes a packet (6 MiB of heap otherwise).
  disableMqttNumberCache();
  const counters = createShellCounters();
  /** The config in force: replaced by a reload, read through closures below. */
  let current = config;
  // systemd Type=notify (READY, WATCHDOG, STATUS, STOPPING); does nothing without NOTIFY_SOCKET.
  const sd = createSdNotify({ log });
  void sd.status('opening the spool');

  // The spool and the seq reservation: opened before anything is accepted.
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const seq = SeqState.load(dataDir);
  const t0 = performance.now();
  // Durable and `full`: group commits are fsynced off the event loop (sqlite-spool.ts `syncWal`).
  const syncOffLoop = config.durability === 'durable' && config.spool.synchronous === 'full';
  const opened = SqliteSpool.open({ file: join(dataDir, config.spool.file), synchronous: config.spool.synchronous, syncCommitsOffLoop: syncOffLoop });
  const spool = opened.spool;
  let quarantined = 0;
  if (opened.quarantined !== undefined) {
    quarantined++;
    const q = opened.quarantined;
    const lost = q.lost.reduce((a, l) => a + l.records, 0);
    const owed = q.owedFrom === 'clean-stop' ? 'exact, from the last clean stop' : q.owedFrom === 'checkpoint' ? 'at most, from the last checkpoint' : 'unknown: no record of what was owed';
    log.error(
      { event: 'spool_quarantined', movedTo: q.path, reason: q.reason, salvaged: q.salvaged, lost, lostByStream: q.lost, owedFrom: q.owedFrom, unreadableSeqs: q.unreadableSeqs, salvageError: q.salvageError },
      `spool file was corrupt: moved aside; ${q.salvaged} records salvaged into a fresh spool, ${lost} lost (${owed})`,
    );
  }
  const pipeline = new Pipeline(pipelineOptions(() => current, { firstSeq: seq.reserved, spool }));
  // What a damaged spool could not give back is counted as recovered and dropped (`corrupt`), per
  // stream, so conservation stays exact; loss notices tell the consumers from the same counters.
  const recovered = pipeline.recover(opened.quarantined?.lost ?? []);
  log.info({ event: 'spool_opened', file: spool.file, recovered, nextSeq: pipeline.nextSeq, ms: Math.round(performance.now() - t0) }, recovered > 0 ? `recovered ${recovered} records from the spool` : 'spool opened');
  const startWall = Date.now();
  const startMono = performance.now();
  const engine = new Engine(pipeline, {
    log,
    now: () => performance.now(),
    wallNow: () => Date.now(),
    ageNow: () => startWall + (performance.now() - startMono),
    reserveSeq: (next) => seq.ensure(next),
    groupCommitMs: config.spool.groupCommitMs,
    ...(syncOffLoop ? { syncCommit: () => spool.syncWal() } : {}),
    streamIdleMs: () => current.limits.streamIdleSeconds * 1_000,
  });
  const checkpointer = new Checkpointer(spool.file);
  // Progress as /healthz and the systemd watchdog judge it: records waiting with credit open
  // and nothing sent, acked or dropped for health.stallSeconds is a stall; idle or backpressure is not.
  const watch = new PipelineWatch({
    pipeline,
    maxCredit: () => current.consumers.maxCredit,
    memoryBudgetBytes: () => current.limits.memoryBudgetBytes,
    stallMs: () => current.health.stallSeconds * 1_000,
    now: () => performance.now(),
  });
  // A 200 ms timer while there is work (see the health tick below): sees the stalls that matter
  // (keepalive, acks); at 50 ms it cost an idle daemon ~0.4 % of a core (the footprint bench).
  const loopDelay = new LoopDelayWindow(200);
  loopDelay.start();
  const drivers = await createDrivers(config);
  let stopping = false;
  // Filled in once they exist; health reads them through these.
  let uplinks = (): UplinkState[] => [];
  const judge = new HealthJudge(() => {
    const t = pipeline.totals();
    // Per group: its consumers (WebSocket, dial and MQTT upstreams alike) and what waits for it.
    const groups = pipeline.groups().map((g) => ({ group: g.name, consumers: g.consumers, waiting: g.backlog }));
    return {
      now: performance.now(),
      stopping,
      sources: drivers.map((d) => d.health()),
      uplinks: uplinks(),
      groups,
      spoolFailing: t.spoolFailing,
      progressing: stopping || watch.progressing(),
      stallSeconds: current.health.stallSeconds,
      uplinkDownSeconds: current.health.uplinkDownSeconds,
      consumers: engine.consumerCount,
      buffered: t.buffered,
      spooled: t.spooled,
      inflight: t.inflight,
      heldBytes: t.heldBytes,
      memoryBudgetBytes: current.limits.memoryBudgetBytes,
    };
  });
  const health = judge.judge;
  // The charts' samples, and a health verdict every second so "gone for N s" is timed even when nobody asks.
  const chartMs = config.admin.chartSampleSeconds * 1_000;
  const samples = SampleRing.forInterval(chartMs);
  const sample = () => samples.push(takeSample(pipeline, { memoryBudgetBytes: current.limits.memoryBudgetBytes, spoolQuotaBytes: current.spool.quotaBytes, at: Date.now() }));
  sample();
  const sampler = setInterval(sample, chartMs);
  // Work is records held anywhere, or any ingested or acked since the last tick.
  let movedBefore = -1;
  const healthTick = setInterval(() => {
    health();
    const t = pipeline.totals();
    const moved = t.ingested + t.acked;
    loopDelay.busy(moved !== movedBefore || t.buffered + t.spooled + t.inflight > 0);
    movedBefore = moved;
  }, 1_000);
  sampler.unref();
  healthTick.unref();

  const started: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (const stop of started.reverse()) await stop();
  };
  const urls: { consumers?: string; admin?: string; broker?: string } = {};
  started.push(async () => {
    clearInterval(sampler);
    clearInterval(healthTick);
    loopDelay.stop();
    await checkpointer.close();
    spool.close();
  });
  try {
    engine.start(config.consumers.ackTimeoutMs);
    started.push(() => engine.stop());
    const maintenance = new Maintenance(config.spool, spool, checkpointer, engine, log);
    started.push(() => maintenance.stop());
    // Rows a lower quota than at the last run let go (Pipeline.recover) leave their pages behind.
    if (pipeline.totals().dropped > 0) maintenance.fitDisk();

    if (config.admin.enabled) {
      const admin = new AdminServer(config.admin.host, config.admin.port, {
        metrics: () => renderMetrics({ pipeline, counters, consumers: () => engine.consumerCount, blockedStreams: () => engine.blockedStreams, spoolQuarantined: () => quarantined, spoolDiskBytes: () => spool.sizeOnDisk(), loopDelay }),
        health,
        charts: () => renderCharts(samples.list(), Date.now()),
        chartIntervalMs: chartMs,
        status: () =>
          buildStatus(pipeline, {
            sources: drivers.map((d) => d.health()),
            uplinks: uplinks(),
            health: health(),
            memoryBudgetBytes: current.limits.memoryBudgetBytes,
            spoolQuotaBytes: current.spool.quotaBytes,
            startedAt: startWall,
          }),
      });
      urls.admin = await admin.start();
      started.push(() => admin.stop());
    }

    // Session settings, read through getters so a reload reaches new connections;
    // listen and dial options inherit them (a spread would freeze them).
    const sessionSettings = {
      get tokens() {
        return current.consumers.tokens;
      },
      get helloTimeoutMs() {
        return current.consumers.helloTimeoutMs;
      },
      get maxFrameBytes() {
        return current.consumers.maxFrameBytes;
      },
      get maxCredit() {
        return current.consumers.maxCredit;
      },
      get ackTimeoutMs() {
        return current.consumers.ackTimeoutMs;
      },
      get maxBatchRecords() {
        return current.consumers.maxBatchRecords;
      },
      get maxBufferedBytes() {
        return current.consumers.maxBufferedBytes;
      },
      get stuckTimeoutMs() {
        return current.consumers.stuckTimeoutMs;
      },
    };
    let listener: WsListener | undefined;
    if (config.consumers.listen.enabled) {
      const c = config.consumers;
      const options: ListenOptions = Object.assign(Object.create(sessionSettings) as typeof sessionSettings, { ...c.listen, maxConsumers: c.maxConsumers });
      listener = new WsListener(options, { engine, log, counters });
      urls.consumers = await listener.start();
      const l = listener;
      started.push(() => {
        l.stopAccepting();
        l.closeAll();
      });
    }

    // Dial mode: the daemon connects out; each upstream plays a consumer.
    const dial = createWsDial(
      Object.assign(Object.create(sessionSettings) as typeof sessionSettings, { dial: config.consumers.dial }),
      { engine, log, counters },
    );
    await dial.start();
    started.push(() => dial.stop());

    // mqtt.js is loaded only when an MQTT upstream (or source) is configured: it costs several MiB of RSS.
    const mqttUpstreams: MqttUpstreams =
      config.upstreams.mqtt.length === 0 ? NO_MQTT_UPSTREAMS : (await import('./upstreams/mqtt-upstream.js')).createMqttUpstreams(config.upstreams.mqtt, { engine, log, counters });
    await mqttUpstreams.start();
    started.push(() => mqttUpstreams.stop());
    uplinks = () => [...dial.dialers.map((d) => d.uplink()), ...mqttUpstreams.upstreams.map((u) => u.uplink())];

    const lossNotices = createLossNotices(config.consumers.lossNotices, { engine, log, targets: listener === undefined ? [dial] : [listener, dial] });
    await lossNotices.start();
    started.push(() => lossNotices.stop());

    for (const driver of drivers) {
      await driver.start(driverContext(driver, () => current, engine, counters, log));
      started.push(() => driver.stop());
      const listening = driver.listenUrl?.();
      if (listening !== undefined) urls.broker = listening;
    }
    engine.onRoom(() => {
      for (const d of drivers) d.resume?.();
    });

    log.info({ event: 'ready', ...urls, sources: drivers.map((d) => d.name) }, 'spillway ready');
    void sd.ready(watch.status());
    const watchdog = sd.startWatchdog(watch);
    started.push(() => watchdog.stop());

    const stop = async (reason: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      // First: STOPPING=1 also stops the watchdog, which must not judge a pipeline that stops sending on purpose.
      void sd.stopping(`stopping (${reason}): up to ${current.shutdown.drainTimeoutMs} ms for ${pipeline.totals().inflight} in-flight records`);
      log.info({ event: 'stopping', reason, drainTimeoutMs: current.shutdown.drainTimeoutMs }, 'stopping: intake closed, waiting for in-flight acks');
      await stopIntake(drivers, log);
      listener?.stopAccepting();
      // Connections stay open through the drain (acks and PUBACKs still arrive); they only stop reconnecting.
      dial.stopReconnecting();
      mqttUpstreams.stopReconnecting();
      engine.stopSending();
      await engine.inflightDrained(AbortSignal.timeout(current.shutdown.drainTimeoutMs));
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
      await sd.flush();
    };
    const reload = (next: Config): ReloadResult => {
      const changed = changedKeys(current, next);
      const needRestart = restartKeys(changed);
      if (needRestart.length > 0) {
        log.error({ event: 'reload_refused', needRestart }, `config reload refused: ${needRestart.join(', ')} can only change with a restart; the running config stays`);
        return { ok: false, changed, needRestart };
      }
      const previous = current;
      const apply = (cfg: Config): void => {
        current = cfg;
        log.level = cfg.log.level;
        pipeline.memoryBudgetBytes = cfg.limits.memoryBudgetBytes;
        pipeline.reservedShares = reservedShares(cfg);
        pipeline.maxCredit = cfg.consumers.maxCredit;
        pipeline.ackTimeoutMs = cfg.consumers.ackTimeoutMs;
        pipeline.maxAttempts = cfg.consumers.maxAttempts;
        pipeline.spoolQuotaBytes = cfg.spool.quotaBytes;
        maintenance.quotaBytes = cfg.spool.quotaBytes;
      };
      apply(next);
      try {
        engine.reconfigure();
      } catch (err) {
        // Refused before the pipeline changed anything (a new group's bit needs the spool's group map).
        apply(previous);
        log.error({ event: 'reload_refused', err: (err as Error).message }, `config reload refused, the running config stays: ${(err as Error).message}`);
        return { ok: false, changed, needRestart };
      }
      // The rows a lower quota let go leave their pages in the file, which writes count against it.
      if (next.spool.quotaBytes < previous.spool.quotaBytes) maintenance.fitDisk();
      log.info({ event: 'reloaded', changed }, changed.length === 0 ? 'config reloaded: nothing changed' : `config reloaded: ${changed.join(', ')}`);
      return { ok: true, changed, needRestart };
    };
    return { urls, engine, reload, stop };
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

function driverContext(driver: Driver, config: () => Config, engine: Engine, counters: ShellCounters, log: Logger): DriverContext {
  return {
    log: log.child({ source: driver.name }),
    ingest: (stream, payload, priority) => {
      const outcome = engine.ingest(stream, payload, priority);
      if (outcome === 'rejected') counters.inputRejected.inc([driver.name, engine.pipeline.rejection]);
      return outcome;
    },
    kept: () => engine.committed(),
    reject: (reason) => counters.inputRejected.inc([driver.name, reason]),
    get maxPayloadBytes() {
      return config().limits.maxPayloadBytes;
    },
  };
}
