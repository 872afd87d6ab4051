/** The one place that maps a framing config to its framer. */
import type { FramingConfig } from '../config.js';
import { CsvFramer } from './csv.js';
import { FixedFramer } from './fixed.js';
import type { FrameSink, Framer } from './framer.js';
import { JsonlFramer } from './jsonl.js';
import { LinesFramer } from './lines.js';
import { NmeaFramer } from './nmea.js';

export function createFramer(cfg: FramingConfig, sink: FrameSink): Framer {
  switch (cfg.type) {
    case 'lines':
      return new LinesFramer(cfg, sink);
    case 'jsonl':
      return new JsonlFramer(cfg, sink);
    case 'csv':
      return new CsvFramer(cfg, sink);
    case 'nmea':
      return new NmeaFramer(cfg, sink);
    case 'fixed':
      return new FixedFramer(cfg, sink);
    default: {
      const unknown: never = cfg;
      throw new Error(`unknown framing ${JSON.stringify(unknown)}`);
    }
  }
}
