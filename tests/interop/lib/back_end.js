'use strict';

// A back-end (service) client of the gateway: MQTT.js (the device SDK's own MQTT dependency)
// connecting to the broker as `{hub}/$service` with a service SAS token made from the server's
// service connection string, subscribed to every device's telemetry.

const fs = require('node:fs');
const mqtt = require('mqtt');
const { ConnectionString, SharedAccessSignature, anHourFromNow } = require('azure-iot-common');

const kTelemetryFilter = 'devices/+/messages/events/#';

// connectBackEnd connects to broker as a back end of hub, subscribes to every device's telemetry
// and resolves, once the broker granted the subscription, to {nextMessage(deviceId), close()}:
// nextMessage resolves to the first {topic, payload} received (or already received) from deviceId.
// It rejects when the broker refuses the connection or the subscription.
async function connectBackEnd(server, broker, hub) {
  const cs = ConnectionString.parse(server.config.serviceConnectionString);
  const token = SharedAccessSignature.create(hub, cs.SharedAccessKeyName, cs.SharedAccessKey,
                                             anHourFromNow()).toString();
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: broker.port,
    ca: fs.readFileSync(server.config.trustBundle, 'utf8'),
    clientId: '$service-interop',
    username: `${hub}/$service`,
    password: token,
    reconnectPeriod: 0,
  });
  const received = [];
  const waiting = [];
  client.on('message', (topic, payload) => {
    received.push({ topic, payload: payload.toString() });
    for (const w of waiting.splice(0)) w();
  });
  await new Promise((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const granted = await new Promise((resolve, reject) => {
    client.subscribe(kTelemetryFilter, { qos: 1 }, (err, g) => (err ? reject(err) : resolve(g)));
  });
  if (granted[0].qos > 2) throw new Error(`the broker refused the subscription: ${JSON.stringify(granted)}`);

  const nextMessage = async (deviceId) => {
    const prefix = `devices/${deviceId}/messages/events/`;
    for (;;) {
      const found = received.find((m) => m.topic.startsWith(prefix));
      if (found) return found;
      await new Promise((resolve) => waiting.push(resolve));
    }
  };
  const close = () => new Promise((resolve) => client.end(false, {}, resolve));
  return { nextMessage, close };
}

module.exports = { connectBackEnd };
