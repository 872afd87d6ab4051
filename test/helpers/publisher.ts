/** Publishes test payloads to a broker with mqtt.js. */
import mqtt from 'mqtt';

export async function publishAll(url: string, messages: ReadonlyArray<{ topic: string; payload: string | Buffer }>, qos: 0 | 1 = 1): Promise<void> {
  const client = await mqtt.connectAsync(url, { clientId: `test-pub-${process.pid}-${Math.random().toString(16).slice(2)}` });
  try {
    const window = 100;
    for (let i = 0; i < messages.length; i += window) {
      await Promise.all(messages.slice(i, i + window).map((m) => client.publishAsync(m.topic, m.payload, { qos })));
    }
  } finally {
    await client.endAsync();
  }
}
