/**
 * What each config key does, by key path (config/docs.ts explains the
 * paths; `key@tag` is a key of one member of a discriminated union, e.g.
 * `sources.serial[].framing.delimiter@csv`). Read by the generated
 * reference, docs/CONFIG.md. A schema `.describe()` takes precedence; a
 * test fails when a schema key has neither, or when a key here is gone
 * from the schema.
 */

/** The top of docs/CONFIG.md: what applies to every key. */
export const INTRO = `
# spillway configuration reference

<!-- Generated from config/schema.ts by \`node dist/scripts/gen-config-docs.js\`; edit config/descriptions.ts, not this file. -->

spillway reads one YAML file: \`spillway run --config FILE\`. Every key is
optional; an empty file (or no \`--config\`) runs on the defaults below: the
embedded MQTT broker on 127.0.0.1:1883, every message under \`sensors/#\` a
record of the stream named after its topic, consumers on
\`ws://127.0.0.1:7420/v1/consume\`, metrics and status on
\`http://127.0.0.1:7421\`. [config/spillway.example.yaml](../config/spillway.example.yaml)
shows every key with its default.

Check a file without starting the daemon:

\`\`\`sh
spillway check-config /etc/spillway/spillway.yaml   # from a checkout: npx spillway check-config FILE
# exit 0, or 78 with every problem, each naming the key, the bad value and what is allowed:
#   consumers.maxCredit: 0 is not allowed: expected at least 1
#   consumers.maxCredits: unknown key (did you mean maxCredit? allowed here: ...)
\`\`\`

\`spillway run\` refuses the same problems with the same exit code (78, which
the systemd unit does not restart on). The config is read and validated at
start; SIGHUP (\`systemctl reload spillway\`) reads it again and applies what
may change live (the README's **Reload**), or refuses the whole file and
keeps the running config.

## What a config file must be

Both \`run\` and \`check-config\` refuse, before using any of its content, a file that is:

- not a regular file (a directory, FIFO or device);
- writable by its group or by others (\`mode & 0o022\`: \`chmod go-w FILE\`), or
  in a directory others can write that has no sticky bit: whoever can change
  the config can make the daemon read or write where they like;
- larger than 1 MiB, not UTF-8, or holding control characters other than tab,
  newline and carriage return;
- anything but one plain YAML 1.2 document: no second document (\`---\`), no
  \`%YAML 1.1\` directive, no tags (\`!!binary\`, \`!!set\`, \`!custom\`), no keys
  that are lists or mappings, no duplicate keys, at most 100 alias uses (a
  "billion laughs" file is refused), at most 32 levels of nesting;
- holding a key \`__proto__\`, \`constructor\` or \`prototype\` anywhere (they
  name JavaScript object internals).

Then every key is checked against the schema: unknown keys are errors (with
a suggestion when a key is a near miss), and so are values of the wrong type
or out of range. At most 50 problems are listed, and the rest counted.

## Paths

- \`dataDir\`, when relative, is resolved against the **working directory of
  the process**, not the config file's directory: under systemd that is the
  unit's \`WorkingDirectory=\` (\`/var/lib/spillway\`, its state directory), so
  the default \`./var\` is \`/var/lib/spillway/var\`; from a checkout it is
  \`./var\` where you run the command. The loaded config holds it absolute. A
  system directory (\`/\`, \`/etc\`, \`/var\`, \`/tmp\`, ...) or anything under
  \`/proc\` or \`/sys\` is refused, and so is an existing dataDir that others
  can write.
- \`spool.file\` is a file name inside \`dataDir\`, never a path: not \`.\`, \`..\`
  or a file the daemon keeps there (\`seq.next\`).
- \`sources.serial[].path\` must be absolute (\`/dev/serial/by-id/...\` survives
  replugging). Certificate and key files (\`tls.*\`, \`*File\`) may be relative
  (to the working directory, like \`dataDir\`) and must not hold control
  characters.

## What else is checked before the daemon starts

\`check-config\` checks what \`run\` needs at start, and \`run\` refuses the
same with exit 78 **before it creates or opens anything** (no spool, no
\`seq.next\`), so systemd does not restart it every 5 s:

- every TLS file (\`consumers.listen.tls.cert/key/clientCa\`,
  \`sources.mqtt[].tls.*\`, \`consumers.dial[].tls.*\`,
  \`upstreams.mqtt[].tls.*\`) exists, is a regular file, and the **service
  user** can read it and enter every directory above it;
- once they can all be read, each TLS block's files are usable: a \`ca\` or
  \`clientCa\` holds one or more PEM certificates that parse, and a \`cert\`
  with its \`key\` is a PEM certificate and the unencrypted private key that
  matches it;
- no two of the daemon's own listeners (\`sources.embeddedBroker\`,
  \`consumers.listen\`, \`admin\`, when enabled) are sure to take one port:
  the same host, or \`0.0.0.0\` and an IPv4 address, or \`::\` and any
  address (port 0, picked by the system, never clashes; \`localhost\`
  against an address depends on the resolver and is left to the start);
- an existing \`dataDir\` is a directory the service user can write in (a
  missing one is created at start, or by systemd's \`StateDirectory=\`);
- every URL the daemon connects to (\`sources.mqtt[].url\`,
  \`consumers.dial[].url\`, \`upstreams.mqtt[].url\`) parses, names a host,
  and has a port from 1 to 65535 when it gives one.

The service user is \`spillway\` (the unit's \`User=\`) when the check runs as
root and that user exists, with its groups from \`/etc/group\`; otherwise the
user running the check. A file that disappears between the check and its use
still stops the start with exit 78. A port some other program holds is
not a config problem: \`run\` then exits 1 (\`start_failed\`, code
\`LISTEN\`) and systemd retries. YAML errors are all listed, each at its
line: an alias (\`*name\`) without an anchor (\`&name\`) before it, a line
indented under a key that already has a value, every duplicate key.

Sizes are in bytes, durations in milliseconds (\`Ms\`) or seconds
(\`Seconds\`), as their names say.
`;

/** How a key chosen by the operator is written in key paths. */
export const SECTION_PLACEHOLDERS: Readonly<Record<string, string>> = {
  streams: '<stream>',
  'limits.reservedShares': '<priority>',
};

export const DESCRIPTIONS: Readonly<Record<string, string>> = {
  dataDir: 'Where the spool and the seq reservation (`seq.next`) live. Relative: against the working directory (see Paths).',
  durability:
    '`memory`: records live in RAM until pressure or shutdown; a crash (kill -9, power loss) loses what memory held. `durable`: each record is committed to the spool, in group commits, before its source is acked (MQTT PUBACK); a crash loses nothing acked to a source. A graceful stop (SIGTERM) loses nothing in either mode.',

  spool: 'The SQLite spool: spilled records, records kept across restarts, and in durable mode every record.',
  'spool.file': 'The SQLite file, inside dataDir.',
  'spool.quotaBytes': 'Disk quota, the database and its WAL together (payload plus ~48 bytes a row); the rows leave the WAL twice its checkpoint threshold, min(1 MiB, an eighth of the quota), plus a write\'s frames and those of the delete that makes room for it (README, What the spool takes on disk); a write the WAL has no room for while its checkpoint catches up is refused (`spillway_spool_wal_refused_total`). When reached, the least important, oldest spooled records are dropped (`spool_full`), oldest first across streams of one priority, and with groups for every group that owes them.',
  'spool.synchronous': '`normal`: a commit survives a process crash. `full`: also power loss, at an fsync per commit (in durable mode an fdatasync of the WAL per group commit, off the event loop, before its PUBACKs).',
  'spool.spillBatchRecords': 'Records moved to the spool per transaction.',
  'spool.replayBatchRecords': 'Records read back from the spool at a time.',
  'spool.groupCommitMs': 'Durable mode: how long a group commit waits for more records before its one transaction. 0 commits the records of one event-loop turn together, which already batches every publish that arrived meanwhile; a few ms gathers more per fsync with `synchronous: full` on a slow SD card, at that much latency per PUBACK. With `full` a commit also waits for the fdatasync before it, then for the producers that one released, at most as long as it took (1-10 ms; README, Group commit).',
  'spool.checkpointCron': 'When the WAL is checkpointed (in a worker thread); cron with seconds.',
  'spool.reclaimCron': 'When free pages are returned to the file system.',
  'spool.ttlCron': "When records older than their stream's `ttlMs` are dropped (`expired`).",
  'spool.statsCron': 'When the periodic stats line is logged.',

  log: 'Logs are JSON lines on stdout (journald keeps them).',
  'log.level': 'The least severe level logged. `error`: data was lost or an operator must act; `warn`: recovered without loss; per-record lines only at `debug`, rate-limited.',

  limits: 'Bounds on what the daemon holds, whatever its sources send.',
  'limits.memoryBudgetBytes': 'Memory for every record held, waiting or in flight: payload plus a fixed per-record overhead. When reached, the least important, oldest record leaves memory (spilled, or dropped as `overflow`).',
  groups: 'Destinations that each get every record of the streams they select, with their own position, credit, in-flight table, attempts and order (docs/PROTOCOL.md, "Groups"). Absent: one group `default` selecting every stream. WebSocket consumers choose a group in `hello`; `consumers.dial[]` and `upstreams.mqtt[]` entries name one with `group`. A record leaves memory and the spool only once every group that selects it acked or dropped it; a record of a stream no group selects is discarded at ingest, counted (`spillway_unselected_records_total`) and logged (`records_unselected`). A reload may add a group (it starts at the next record), remove one (what only it held is released, counted) or change a selector (records ingested afterwards follow it).',
  'groups.<name>': 'One group, named by its key (letters, digits, `_ . -`, 1-64 chars; at most 31 groups).',
  'groups.<name>.streams': 'MQTT-style filters over stream names (`sensors/+/temp`, `sensors/alarm/#`); absent: every stream.',
  'groups.<name>.maxBacklogRecords': 'Records waiting for this group at most; beyond, its own oldest, least important ones are dropped for it alone (`lagging`), while other groups keep theirs. Absent: no bound of its own (memory pressure is shared).',
  'groups.<name>.maxBacklogBytes': 'Payload bytes waiting for this group at most; beyond, as `maxBacklogRecords`.',
  'limits.maxStreams': 'Distinct streams not named under `streams` (those always have room, so a topic flood cannot lock out a configured stream). Input for another stream is rejected and counted (`spillway_input_rejected_total{reason="too_many_streams"}`), so a topic flood cannot grow state.',
  'limits.maxStreamNameBytes': 'Longest stream name in UTF-8 bytes. Every name is a metric label; input for a longer one is rejected and counted (`reason="stream_name_too_long"`).',
  'limits.streamIdleSeconds': 'A stream not named under `streams` that holds nothing (nothing waiting, spooled or in flight) and took no record for this long is forgotten, so `maxStreams` bounds live streams, not history. Its counts stay on `/metrics` under `stream="(forgotten)"`, and `spillway_streams_forgotten_total` counts them. 0 keeps every stream.',
  'limits.maxPayloadBytes': 'Larger payloads are rejected and counted in `spillway_input_rejected_total{reason="oversized"}`.',
  'limits.reservedShares': 'Share of the memory budget kept for a priority, e.g. `{"0": 0.25}`: less important records cannot use it. The shares add up to at most 1.',

  streamDefaults: 'The settings of every stream not named under `streams`.',
  'streamDefaults.priority': '0 is the most important, 9 the least: delivered first, dropped last.',
  'streamDefaults.capacityRecords': "The stream's ring, in records.",
  'streamDefaults.capacityBytes': "The stream's ring, in payload bytes.",
  'streamDefaults.whenFull':
    'What a full ring does: `spill` moves the oldest records to the spool; `drop-oldest` / `drop-newest` drop (`overflow`); `block` holds the source back (serial: pause the port; MQTT: withhold the PUBACK), also when the memory budget is full: a `block` stream neither drops its records for records as important nor makes theirs leave; only a more important record takes its room (its oldest, `overflow`).',
  'streamDefaults.replay': '`fifo`: the backlog (spooled records) first, oldest first. `live-first`: fresh records first, the backlog at `backlogShare` of deliveries.',
  'streamDefaults.backlogShare': 'With `live-first`: the share of deliveries given to the backlog while fresh records wait.',
  'streamDefaults.ttlMs': 'Records older than this (from a monotonic clock) are dropped as `expired`; 0 keeps them until delivered.',

  streams: 'Per-stream settings by exact stream name (an MQTT topic, a serial port name); unset keys come from `streamDefaults`.',
  'streams.<stream>': 'The settings of one stream: any key of `streamDefaults`.',

  sources: 'Where records come from. Source names (MQTT and serial together, and `embedded-broker` while the embedded broker runs) must all differ: they label logs and metrics.',
  'sources.embeddedBroker': 'An MQTT broker inside the daemon, so a gateway needs no Mosquitto.',
  'sources.embeddedBroker.enabled': 'Run the embedded broker.',
  'sources.embeddedBroker.host': 'Address it listens on; keep it on loopback unless sensors publish over the network.',
  'sources.embeddedBroker.port': 'Port it listens on (0: any free port).',
  'sources.embeddedBroker.username': 'When set (with `password`), clients must log in with these.',
  'sources.embeddedBroker.password': 'Goes with `username`.',
  'sources.embeddedBroker.maxPayloadBytes': 'A publish whose header announces a larger payload is refused before its body is read: the connection is closed and `spillway_input_rejected_total{source="embedded-broker",reason="oversized"}` counts it.',
  'sources.embeddedBroker.maxBlockMs': "How long a `block` stream may withhold one client's PUBACK (that client's other publishes wait too; other clients go on); past it the client is disconnected, counted as `blocked_too_long`, and resends on reconnect. Default: half the client's keepalive, 5 s for a client without one.",
  'sources.embeddedBroker.subscriptions': 'Topic filters whose publishes become records, taken in process before the PUBACK. A publish matching none is forwarded to the broker\'s subscribers only (counted as `unrouted`).',
  'sources.embeddedBroker.subscriptions[]': 'One topic filter.',
  'sources.embeddedBroker.subscriptions[].topic': 'MQTT topic filter (`+` and `#` wildcards).',
  'sources.embeddedBroker.subscriptions[].stream': "Stream name: `{topic}` is the message's topic, `{N}` its N-th level from 0.",
  'sources.embeddedBroker.subscriptions[].priority': 'Priority of the streams it creates, unless `streams.<stream>` says otherwise. Default: `streamDefaults.priority`.',
  'sources.mqtt': 'External MQTT brokers to subscribe to (Mosquitto, a cloud broker). Empty by default: the embedded broker takes its publishes in process.',
  'sources.mqtt[]': 'One broker connection.',
  'sources.mqtt[].name': 'Names the source in logs and metric labels.',
  'sources.mqtt[].url': 'The broker: `mqtt://HOST:PORT`, or `mqtts://` for TLS.',
  'sources.mqtt[].protocolVersion': '`4`: MQTT 3.1.1; `5`: MQTT 5.',
  'sources.mqtt[].clientId': 'A fixed client id; required for a persistent session. Default: `spillway-<name>-<pid>`.',
  'sources.mqtt[].username': 'Broker login.',
  'sources.mqtt[].password': 'Broker password (keep the file `chmod 600` when set).',
  'sources.mqtt[].tls': "TLS files for `mqtts://`; the broker's certificate is always verified.",
  'sources.mqtt[].tls.ca': "PEM file of the CA that signed the broker's certificate (default: the system's CAs).",
  'sources.mqtt[].tls.cert': 'PEM file of a client certificate, for brokers that require one.',
  'sources.mqtt[].tls.key': 'PEM file of the client certificate\'s key.',
  'sources.mqtt[].persistentSession': 'Keep the session across reconnects and restarts (clean=false; MQTT 5 session expiry): the broker queues QoS 1 messages while the daemon is away. Needs `clientId`.',
  'sources.mqtt[].sessionExpirySeconds': 'MQTT 5, persistent session: how long the broker keeps it after a disconnect.',
  'sources.mqtt[].keepaliveSeconds': 'MQTT keepalive.',
  'sources.mqtt[].reconnect': 'Reconnect delays: exponential from `initialMs`, capped at `maxMs`, with jitter.',
  'sources.mqtt[].reconnect.initialMs': 'The first delay.',
  'sources.mqtt[].reconnect.maxMs': 'The cap; at least `initialMs`.',
  'sources.mqtt[].maxBlockMs': 'How long a `block` stream may withhold a PUBACK (nothing else is read meanwhile, keepalive included); past it the message is let go, counted as rejected input. Below the keepalive; default: half of it.',
  'sources.mqtt[].subscriptions': 'Topic filters, each mapped to streams.',
  'sources.mqtt[].subscriptions[]': 'One subscription.',
  'sources.mqtt[].subscriptions[].topic': 'MQTT topic filter (`+` and `#` wildcards).',
  'sources.mqtt[].subscriptions[].qos': '0 or 1. With 1, `block` withholds the PUBACK: real backpressure to the producer.',
  'sources.mqtt[].subscriptions[].stream': "Stream name: `{topic}` is the message's topic, `{N}` its N-th level from 0.",
  'sources.mqtt[].subscriptions[].priority': 'Priority of the streams it creates, unless `streams.<stream>` says otherwise. Default: `streamDefaults.priority`.',
  'sources.serial': 'Serial ports; each is one stream.',
  'sources.serial[]': 'One serial port.',
  'sources.serial[].name': 'Names the source in logs and metric labels, and is its stream unless `stream` is set.',
  'sources.serial[].path': 'The device, absolute: `/dev/ttyUSB0`, or `/dev/serial/by-id/...` (stable across replugs).',
  'sources.serial[].baudRate': 'Line speed.',
  'sources.serial[].dataBits': 'Bits per character.',
  'sources.serial[].parity': '`mark` and `space` are refused by Linux when the port opens (the source reports it down).',
  'sources.serial[].stopBits': '`1.5` is refused by Linux when the port opens.',
  'sources.serial[].rtscts': 'RTS/CTS hardware flow control: with `block`, tells the sensor to stop.',
  'sources.serial[].stream': "Stream name. Default: the port's `name`.",
  'sources.serial[].priority': 'Priority of the stream, unless `streams.<stream>` says otherwise. Default: `streamDefaults.priority`.',
  'sources.serial[].framing': 'How the bytes are cut into records. Runs longer than `maxFrameBytes` are discarded up to the next delimiter and counted.',
  'sources.serial[].framing.type': '`lines`: text lines; `jsonl`: one JSON value a line; `csv`: rows as JSON objects; `nmea`: NMEA 0183 sentences, checksum verified; `fixed`: frames of `frameBytes`.',
  'sources.serial[].framing.delimiter@lines': 'Ends a line; a `\\r` before it is stripped.',
  'sources.serial[].framing.delimiter@csv': 'The field separator.',
  'sources.serial[].framing.encoding': 'How line bytes are read: `utf8` (validated), `ascii` (7-bit only), `latin1` (re-encoded as UTF-8). Default: `utf8`.',
  'sources.serial[].framing.maxFrameBytes': 'The longest frame; longer runs are discarded and counted.',
  'sources.serial[].framing.header': 'The first row names the columns (rows equal to it later are skipped).',
  'sources.serial[].framing.columns': 'Column names: required when `header` is false; override the header when set.',
  'sources.serial[].framing.frameBytes': 'Bytes per frame; at most `maxFrameBytes`.',
  'sources.serial[].reconnect': 'Reopen delays after a failed open or an unplug: exponential from `initialMs`, capped at `maxMs`, with jitter.',
  'sources.serial[].reconnect.initialMs': 'The first delay.',
  'sources.serial[].reconnect.maxMs': 'The cap; at least `initialMs`.',

  consumers: 'Consumers take records over WebSocket (`spillway.v1`, docs/PROTOCOL.md), only as fast as they grant credit.',
  'consumers.listen': 'The endpoint consumers connect to: `ws://HOST:PORT/PATH`.',
  'consumers.listen.enabled': 'Serve consumers.',
  'consumers.listen.host': 'Address to listen on.',
  'consumers.listen.port': 'Port to listen on (0: any free port).',
  'consumers.listen.path': 'The WebSocket path.',
  'consumers.tokens': 'When non-empty, `hello.token` must be one of these (compared in constant time).',
  'consumers.helloTimeoutMs': '`hello` must arrive within this long of the connection opening.',
  'consumers.maxFrameBytes': 'A larger consumer frame is a `bad_message` (the connection is closed, its records redelivered).',
  'consumers.maxConsumers': 'Connections at once, counting those not past `hello` yet.',
  'consumers.maxCredit': "Outstanding credit is clamped to it; also a consumer's in-flight cap.",
  'consumers.ackTimeoutMs': 'An unacked delivery is taken back and redelivered after this.',
  'consumers.maxAttempts': 'Failed deliveries a record gets before it is dropped as `poison`: nacks, ack timeouts and departures of consumers that were reading past it, and consumers that died holding it after it went unread elsewhere; never timeouts at stuck or stalled consumers that stay connected (docs/PROTOCOL.md, "Poison").',
  'consumers.maxBatchRecords': 'Records per `records` message (at most; a message is also cut near 64 KiB of text).',
  'consumers.maxBufferedBytes':
    'Bytes a consumer connection may hold written and not yet taken by the kernel; above it the consumer is sent nothing until it drains (its records wait in memory, counted by the memory budget). Each connection (listen or dial) holds at most this plus one message.',
  'consumers.stuckTimeoutMs': 'A consumer above `maxBufferedBytes` that reads nothing for this long gets `error` `protocol` and is disconnected; its records are redelivered.',

  admin: 'The admin HTTP port: `/metrics` (Prometheus), `/healthz`, `/status` (JSON) and a status page at `/`. Keep it on loopback.',
  'admin.enabled': 'Serve the admin port.',
  'admin.host': 'Address to listen on.',
  'admin.port': 'Port to listen on (0: any free port).',
  'admin.chartSampleSeconds': 'The status page charts one sample this often; the daemon keeps the last 15 minutes of them (181 samples at 5 s).',

  health: 'How `/healthz` (and the systemd watchdog) judge progress.',
  'health.stallSeconds': '`/healthz` turns 503 (and the watchdog stops being fed) when records wait, consumers have credit, and nothing was sent, acked or dropped for this long. Idle or backpressure is not a stall.',
  'health.uplinkDownSeconds': '`/healthz` turns 503 when records wait and no consumer, dial upstream or MQTT upstream has been connected for this long (the reason names each uplink and its state).',

  shutdown: 'How SIGTERM stops the daemon: intake closes, in-flight acks are awaited, everything owed goes to the spool.',
  'shutdown.drainTimeoutMs': 'How long SIGTERM waits for in-flight acks before closing consumers (their records are kept for the next start).',
};
