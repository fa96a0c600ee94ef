'use strict';

// TPM attestation over HTTPS through azure-iot-provisioning-device(-http),
// azure-iot-security-tpm and tss.js, unchanged, with swtpm as the TPM (through the mssim bridge
// in lib/tpm.js; protocol notes §4.5). The SDK creates the EK and SRK, asks for the challenge,
// activates and imports the key devid wraps, signs with it inside the TPM and registers.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, before, test } = require('node:test');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { TpmSecurityClient } = require('azure-iot-security-tpm');
const tss = require('tss.js');
const { startServer } = require('./lib/server');
const { serviceClient, statusOf } = require('./lib/dps');
const { startBridge, startSwtpm } = require('./lib/tpm');

const kTimeout = { timeout: 120000 };

let server;
let swtpm;
let bridge;

before(async () => {
  server = await startServer();
  swtpm = await startSwtpm();
  bridge = await startBridge(swtpm.port);
});

after(async () => {
  if (bridge) await bridge.stop();
  if (swtpm) await swtpm.stop();
  if (server) await server.stop();
});

function call(fn) {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

// newSecurityClient returns a TPM security client on a fresh tss.js connection; swtpm serves one
// connection at a time, so each test closes its own (tpm.close()) when done.
function newSecurityClient(registrationId) {
  const tpm = new tss.Tpm(true, '127.0.0.1', bridge.port);
  return { security: new TpmSecurityClient(registrationId, tpm), tpm };
}

// base32 is RFC 4648 base32, lowercase, without padding.
function base32(bytes) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  let value = 0;
  let bits = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

test('registers a TPM device by its endorsement key, with the key kept in the TPM', kTimeout,
     async (t) => {
       const { security, tpm } = newSecurityClient();
       t.after(() => tpm.close());
       const ek = await call((cb) => security.getEndorsementKey(cb));
       const registrationId = await call((cb) => security.getRegistrationId(cb));
       // The SDK's default registration ID (protocol notes §4.1).
       assert.equal(registrationId, base32(crypto.createHash('sha256').update(ek).digest()));
       await serviceClient(server).createOrUpdateIndividualEnrollment({
         registrationId,
         attestation: { type: 'tpm', tpm: { endorsementKey: ek.toString('base64') } },
       });

       const client = ProvisioningDeviceClient.create(server.host, server.config.idScope,
                                                      new Http(), security);
       const result = await client.register();
       // The TPM client resolves with the whole operation (protocol notes §1.3).
       const state = result.registrationState || result;
       assert.equal(state.status, 'assigned', JSON.stringify(result));
       assert.equal(state.registrationId, registrationId);
       assert.equal(state.deviceId, registrationId);
       assert.equal(typeof state.tpm.authenticationKey, 'string');

       // The key now lives in the TPM: it signs what a hub SAS token needs, and the server's
       // registration holds the same key.
       const signed = await call((cb) => security.signWithIdentity(Buffer.from('hello'), cb));
       assert.equal(signed.length, 32);
     });

test('refuses a TPM whose endorsement key is not enrolled', kTimeout, async (t) => {
  // A second registration ID on the same TPM, never enrolled.
  const { security, tpm } = newSecurityClient('not-enrolled-tpm');
  t.after(() => tpm.close());
  const client = ProvisioningDeviceClient.create(server.host, server.config.idScope, new Http(),
                                                 security);
  // devid answers the unauthenticated PUT with a plain 401 error, no blob; the SDK reports that
  // as a FormatError.
  await assert.rejects(client.register(), (err) => {
    assert.match(err.message, /authentication blob/, `${err.name}: ${err.message}`);
    return true;
  });
  await assert.rejects(serviceClient(server).getDeviceRegistrationState('not-enrolled-tpm'),
                       (err) => statusOf(err) === 404);
});
