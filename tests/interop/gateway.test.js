'use strict';

// A device provisioned through devid with the official DPS SDK (azure-iot-provisioning-device over
// HTTPS) sends telemetry with the official device SDK (azure-iot-device + azure-iot-device-mqtt,
// unchanged) over MQTT/TLS to a real Mosquitto broker running devid's plugin on the same store.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { after, before, test } = require('node:test');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { startBroker } = require('./lib/broker');
const { startServer } = require('./lib/server');
const { deriveDeviceKey, registerDevice, serviceClient, symmetricKeyGroup } = require('./lib/dps');

const kTimeout = { timeout: 60000 };

let server;
let broker;
let groupKey;

before(async () => {
  server = await startServer();
  const { responseBody } =
      await serviceClient(server).createOrUpdateEnrollmentGroup(symmetricKeyGroup('gw-group'));
  groupKey = responseBody.attestation.symmetricKey.primaryKey;
  broker = await startBroker(server);
});

after(async () => {
  if (broker) await broker.stop();
  if (server) await server.stop();
});

// deviceClient is the device SDK's client for a device assigned to assignedHub, dialling the
// broker (GatewayHostName) and trusting devid's trust bundle.
async function deviceClient(assignedHub, deviceId, deviceKey) {
  const client = Client.fromConnectionString(
      `HostName=${assignedHub};DeviceId=${deviceId};SharedAccessKey=${deviceKey};` +
      `GatewayHostName=127.0.0.1:${broker.port}`, Mqtt);
  await client.setOptions({ ca: fs.readFileSync(server.config.trustBundle, 'utf8') });
  return client;
}

test('a device provisioned with the DPS SDK sends telemetry over MQTT/TLS', kTimeout, async () => {
  const key = deriveDeviceKey(groupKey, 'gw-dev-1');
  const state = await registerDevice(server, 'gw-dev-1', key);
  assert.equal(state.status, 'assigned');
  const client = await deviceClient(state.assignedHub, state.deviceId, key);
  try {
    await client.open();
    const message = new Message(JSON.stringify({ temperature: 21.5 }));
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    await client.sendEvent(message);
  } finally {
    await client.close();
  }
  const log = broker.log();
  assert.match(log, /New client connected from 127\.0\.0\.1:\d+ as gw-dev-1 /);
  assert.match(log, /Received PUBLISH from gw-dev-1 \(d0, q1, r0, m\d+, 'devices\/gw-dev-1\/messages\/events\//);
  assert.doesNotMatch(log, /devid: (denied|refused)/);
});

test('the device SDK is refused with a key other than the device\'s', kTimeout, async () => {
  const key = deriveDeviceKey(groupKey, 'gw-dev-2');
  const state = await registerDevice(server, 'gw-dev-2', key);
  const client = await deviceClient(state.assignedHub, state.deviceId,
                              deriveDeviceKey(groupKey, 'someone-else'));
  await assert.rejects(client.open(), (err) => {
    assert.equal(err.constructor.name, 'UnauthorizedError');
    assert.match(err.message, /Not authorized/);
    assert.doesNotMatch(err.message, /certificate/);
    return true;
  });
  await client.close();
  assert.match(broker.log(),
               /devid: refused client "gw-dev-2" from 127\.0\.0\.1: device "gw-dev-2": the token's signature does not match/);
});
