/**
 * The one explicit registry of source drivers: config in, drivers out.
 * Drivers with heavy dependencies (serialport) are loaded only when the
 * config uses them: every module loaded costs RSS on a Pi.
 */
import type { Config } from '../config/schema.js';
import type { Driver } from './driver.js';
import { MqttSource } from './mqtt/source.js';

export async function createDrivers(config: Config): Promise<Driver[]> {
  const drivers: Driver[] = config.sources.mqtt.map((cfg) => new MqttSource(cfg));
  if (config.sources.embeddedBroker.enabled) {
    // aedes costs several MB of RSS on a Pi.
    const { EmbeddedBroker } = await import('./mqtt/embedded-broker.js');
    drivers.push(new EmbeddedBroker(config.sources.embeddedBroker));
  }
  if (config.sources.serial.length > 0) {
    const { createSerialSource } = await import('./serial/source.js');
    drivers.push(...config.sources.serial.map((cfg) => createSerialSource(cfg)));
  }
  return drivers;
}
