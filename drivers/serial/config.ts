/**
 * The config of one serial port source: the port settings, how its bytes are
 * cut into frames, and how it reconnects. Strict like config/schema.ts, every
 * key but `name` and `path` with a default, the type derived from the schema.
 *
 * Linux (bindings-cpp) refuses `parity: mark|space` and `stopBits: 1.5` when
 * the port opens ("Invalid parity setting"); the source then reports the port
 * down with that message and keeps retrying. They are allowed here because
 * other platforms take them.
 */
import { z } from 'zod';
import { TEXT_ENCODINGS } from './framing/text.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The standard rates; the error on any other value lists them. */
export const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600] as const;

const maxFrameBytes = z.int().min(1).max(1 * MiB).default(4 * KiB);

const linesFraming = z.strictObject({
  type: z.literal('lines'),
  /** Ends a line; a trailing `\r` before it is stripped. */
  delimiter: z.string().min(1).max(8).default('\n'),
  /** How line bytes are read: `utf8` (validated), `ascii` (7-bit only) or `latin1` (re-encoded as UTF-8). Default utf8. */
  encoding: z.enum(TEXT_ENCODINGS).optional(),
  maxFrameBytes,
});

const jsonlFraming = z.strictObject({
  type: z.literal('jsonl'),
  maxFrameBytes,
});

const csvFraming = z
  .strictObject({
    type: z.literal('csv'),
    /** The first row is a header naming the columns (and rows equal to it later are skipped). */
    header: z.boolean().default(true),
    /** Column names; required when `header` is false, and override the header's names when set. */
    columns: z.array(z.string().min(1)).min(1).optional(),
    delimiter: z.string().length(1).default(','),
    maxFrameBytes,
  })
  .refine((f) => f.header || f.columns !== undefined, { message: 'columns are required when header is false', path: ['columns'] });

const nmeaFraming = z.strictObject({
  type: z.literal('nmea'),
  maxFrameBytes,
});

const fixedFraming = z
  .strictObject({
    type: z.literal('fixed'),
    frameBytes: z.int().min(1).max(1 * MiB),
    maxFrameBytes,
  })
  .refine((f) => f.frameBytes <= f.maxFrameBytes, { message: 'frameBytes must be at most maxFrameBytes', path: ['frameBytes'] });

export const framingSchema = z.discriminatedUnion('type', [linesFraming, jsonlFraming, csvFraming, nmeaFraming, fixedFraming]);

export const serialPortSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64 chars)'),
  /** The device, e.g. /dev/ttyUSB0 or (stable across replugs) /dev/serial/by-id/... */
  path: z.string().min(1),
  baudRate: z.literal(BAUD_RATES).default(9600),
  dataBits: z.literal([5, 6, 7, 8]).default(8),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space']).default('none'),
  stopBits: z.literal([1, 1.5, 2]).default(1),
  /** RTS/CTS hardware flow control. */
  rtscts: z.boolean().default(false),
  /** Stream name; unset means the port's `name` (see `streamOf`). */
  stream: z.string().min(1).optional(),
  /** Priority of the stream (unless `streams.<name>` says otherwise). */
  priority: z.int().min(0).max(9).optional(),
  framing: framingSchema.prefault({ type: 'lines' }),
  /** Reopen delays after a failed open or an unplug: exponential from initialMs, capped at maxMs, with jitter. */
  reconnect: z
    .strictObject({
      initialMs: z.int().min(1).max(600_000).default(500),
      maxMs: z.int().min(1).max(3_600_000).default(30_000),
    })
    .refine((r) => r.maxMs >= r.initialMs, { message: 'maxMs must be at least initialMs', path: ['maxMs'] })
    .prefault({}),
});

export type SerialPortConfig = z.infer<typeof serialPortSchema>;
export type FramingConfig = SerialPortConfig['framing'];
export type ReconnectConfig = SerialPortConfig['reconnect'];

/** The stream a port's frames go to: `stream`, or the port's name. */
export function streamOf(cfg: Pick<SerialPortConfig, 'name' | 'stream'>): string {
  return cfg.stream ?? cfg.name;
}
