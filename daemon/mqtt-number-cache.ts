/**
 * mqtt-packet (the MQTT codec under mqtt.js and aedes) builds, on its first
 * write, a cache of 65,536 two-byte Buffers for packet ids and lengths: 6 MiB
 * of heap that stay for the life of the process, over a quarter of the idle
 * daemon's heap (a heap snapshot of the idle daemon: 6.0 MiB of `Buffer`
 * objects, 21.6 MiB in all). Without it each number is written from a fresh
 * two-byte slice of Node's buffer pool, a few per packet. The switch is global
 * to the one mqtt-packet in the process and must be thrown before the first
 * packet is written (mqtt.js only ever turns it off: `writeCache: false`).
 */
import mqttPacket from 'mqtt-packet';

export function disableMqttNumberCache(): void {
  mqttPacket.writeToStream.cacheNumbers = false;
}
