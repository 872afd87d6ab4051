/**
 * The one explicit registry of source drivers: config in, drivers out.
 * Drivers are loaded only when the config uses them: every module loaded
 * costs RSS on a Pi (mqtt.js, aedes, serialport: several MiB each).
 */
import type { Config } from '../config/schema.js';
import type { Driver } from './driver.js';

export async function createDrivers(config: Config): Promise<Driver[]> {
  const drivers: Driver[] = [];
  if (config.sources.mqtt.length > 0) {
    const { MqttSource } = await import('./mqtt/source.js');
    drivers.push(...config.sources.mqtt.map((cfg) => new MqttSource(cfg)));
  }
  if (config.sources.embeddedBroker.enabled) {
    const { EmbeddedBroker } = await import('./mqtt/embedded-broker.js');
    drivers.push(new EmbeddedBroker(config.sources.embeddedBroker));
  }
  if (config.sources.serial.length > 0) {
    const { createSerialSource } = await import('./serial/source.js');
    drivers.push(...config.sources.serial.map((cfg) => createSerialSource(cfg)));
  }
  return drivers;
}
