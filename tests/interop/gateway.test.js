'use strict';

// A device provisioned through devid with the official DPS SDK (azure-iot-provisioning-device over
// HTTPS) sends telemetry with the official device SDK (azure-iot-device + azure-iot-device-mqtt,
// unchanged) over MQTT/TLS to a real Mosquitto broker running devid's plugin on the same store:
// with a SAS token, and with an X.509 certificate (self-signed, made with the openssl command line,
// trusted by its individual enrollment and by the broker's mTLS listener). A back end subscribed
// through the same broker with a service SAS token receives the telemetry.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');
const { Client, Message, X509AuthenticationProvider } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { X509Security } = require('azure-iot-security-x509');
const { connectBackEnd } = require('./lib/back_end');
const { startBroker } = require('./lib/broker');
const { startServer } = require('./lib/server');
const { deriveDeviceKey, registerDevice, serviceClient, symmetricKeyGroup } = require('./lib/dps');

const kTimeout = { timeout: 60000 };

let server;
let broker;
let backEnd;
let groupKey;
let dir;

function read(name) {
  return fs.readFileSync(path.join(dir, name), 'utf8');
}

before(async () => {
  server = await startServer();
  const { responseBody } =
      await serviceClient(server).createOrUpdateEnrollmentGroup(symmetricKeyGroup('gw-group'));
  groupKey = responseBody.attestation.symmetricKey.primaryKey;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devid-gw-x509-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                           '-nodes', '-keyout', 'gw-x509.key', '-subj', '/CN=gw-x509', '-days', '30',
                           '-out', 'gw-x509.pem', '-addext', 'extendedKeyUsage=clientAuth'],
               { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // The mTLS listener accepts devid's certificates and this self-signed one; the plugin then
  // decides by the enrollment.
  fs.writeFileSync(path.join(dir, 'clients.pem'),
                   fs.readFileSync(server.config.trustBundle, 'utf8') + read('gw-x509.pem'));
  broker = await startBroker(server, [], { x509CaFile: path.join(dir, 'clients.pem') });
  // The hub devid assigns devices to in this setup (the server's host name).
  backEnd = await connectBackEnd(server, broker, server.host);
});

after(async () => {
  if (backEnd) await backEnd.close();
  if (broker) await broker.stop();
  if (server) await server.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
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
  const received = await backEnd.nextMessage('gw-dev-1');
  assert.deepEqual(JSON.parse(received.payload), { temperature: 21.5 });
  assert.match(received.topic, /^devices\/gw-dev-1\/messages\/events\/.*%24\.ct=application%2Fjson/);
  assert.doesNotMatch(broker.log(), /devid: (denied|refused)/);
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

// x509Client is the device SDK's client for deviceId assigned to assignedHub, presenting the
// gw-x509 certificate to the broker's mTLS listener. The SDK's connection string ignores
// GatewayHostName for X.509 devices, so the authentication provider is built with it directly.
async function x509Client(assignedHub, deviceId) {
  const client = Client.fromAuthenticationProvider(new X509AuthenticationProvider({
    host: assignedHub,
    deviceId,
    gatewayHostName: `127.0.0.1:${broker.x509Port}`,
  }), Mqtt);
  await client.setOptions({
    cert: read('gw-x509.pem'),
    key: read('gw-x509.key'),
    ca: fs.readFileSync(server.config.trustBundle, 'utf8'),
  });
  return client;
}

test('an X.509 device provisioned with the DPS SDK sends telemetry over mutual TLS', kTimeout,
     async () => {
  await serviceClient(server).createOrUpdateIndividualEnrollment({
    registrationId: 'gw-x509',
    attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: read('gw-x509.pem') } } } },
  });
  const security = new X509Security('gw-x509', { cert: read('gw-x509.pem'), key: read('gw-x509.key') });
  const state = await ProvisioningDeviceClient.create(server.host, server.config.idScope, new Http(),
                                                      security).register();
  assert.equal(state.status, 'assigned');
  const client = await x509Client(state.assignedHub, state.deviceId);
  try {
    await client.open();
    await client.sendEvent(new Message(JSON.stringify({ temperature: 22.5 })));
  } finally {
    await client.close();
  }
  const received = await backEnd.nextMessage('gw-x509');
  assert.deepEqual(JSON.parse(received.payload), { temperature: 22.5 });
  assert.doesNotMatch(broker.log(), /devid: (denied|refused) client "gw-x509"/);
});

test('the device SDK is refused with the X.509 certificate of another device', kTimeout,
     async () => {
  // gw-x509's certificate, presented as gw-dev-1 (a SAS device): the CN is not the device ID.
  const client = await x509Client('localhost', 'gw-dev-1');
  await assert.rejects(client.open(), (err) => {
    assert.equal(err.constructor.name, 'UnauthorizedError');
    return true;
  });
  await client.close();
  assert.match(broker.log(),
               /devid: refused client "gw-dev-1" from 127\.0\.0\.1: device "gw-dev-1": the client certificate's CN "gw-x509" is not the device ID/);
});
