/**
 * The one explicit registry of source drivers: config in, drivers out.
 */
import type { Config } from '../config/schema.js';
import type { Driver } from './driver.js';
import { MqttSource } from './mqtt/source.js';
import { createSerialSource } from './serial/source.js';

export function createDrivers(config: Config): Driver[] {
  return [...config.sources.mqtt.map((cfg) => new MqttSource(cfg)), ...config.sources.serial.map((cfg) => createSerialSource(cfg))];
}
