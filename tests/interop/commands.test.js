'use strict';

// Server-signed commands (docs/commands.md) checked by code devid did not write: the device is
// enrolled and registered with the Azure IoT Node SDKs, and Node's own crypto (not cjose, not
// devid) verifies the envelope's ES256 signature (RFC 7515, RFC 7518 §3.4) against
// connection.json's commandSigner certificate.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const { after, before, test } = require('node:test');
const { startServer } = require('./lib/server');
const { newKey, registerDevice, serviceClient, symmetricKeyEnrollment } = require('./lib/dps');

const kCommandSigningEku = '2.25.192555579891264075518482028177372816587';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) await server.stop();
});

// serviceToken makes a service SAS token (sr = the host name) from the connection string.
function serviceToken() {
  const fields = Object.fromEntries(server.config.serviceConnectionString.split(';')
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const sr = encodeURIComponent(fields.HostName);
  const se = Math.floor(Date.now() / 1000) + 600;
  const sig = crypto.createHmac('sha256', Buffer.from(fields.SharedAccessKey, 'base64'))
      .update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}` +
         `&skn=${fields.SharedAccessKeyName}`;
}

// postCommand sends a command through the service API and resolves to {status, body}.
function postCommand(deviceId, command) {
  const body = JSON.stringify(command);
  return new Promise((resolve, reject) => {
    const request = https.request({
      host: server.host,
      path: `/devices/${encodeURIComponent(deviceId)}/commands?ttl=120&api-version=2021-10-01`,
      method: 'POST',
      headers: {
        'authorization': serviceToken(),
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
    }, (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, body: text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

test('the command signer certificate is for commands only', () => {
  const signer = new crypto.X509Certificate(fs.readFileSync(server.config.commandSigner));
  assert.deepEqual(signer.keyUsage, [kCommandSigningEku]);
  assert.equal(signer.ca, false);
  assert.equal(signer.publicKey.asymmetricKeyDetails.namedCurve, 'prime256v1');
});

test('a command for a registered device verifies with Node crypto', async () => {
  const registrationId = 'interop-cmd-1';
  const primaryKey = newKey();
  await serviceClient(server).createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment(registrationId, { primaryKey }));
  await registerDevice(server, registrationId, primaryKey);

  const sent = await postCommand(registrationId, { setInterval: 30 });
  assert.equal(sent.status, 201, sent.body);
  const { envelope, sequence } = JSON.parse(sent.body);
  assert.equal(sequence, 1);

  const [header, payload, signature] = envelope.split('.');
  const signer = new crypto.X509Certificate(fs.readFileSync(server.config.commandSigner));
  const verified = crypto.verify('sha256', Buffer.from(`${header}.${payload}`),
                                 { key: signer.publicKey, dsaEncoding: 'ieee-p1363' },
                                 Buffer.from(signature, 'base64url'));
  assert.ok(verified, 'the ES256 signature does not verify with the command signer key');

  const protectedHeader = JSON.parse(Buffer.from(header, 'base64url'));
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(protectedHeader.typ, 'devid-command+jws');
  assert.equal(protectedHeader['x5t#S256'],
               crypto.createHash('sha256').update(signer.raw).digest('base64url'));
  const claims = JSON.parse(Buffer.from(payload, 'base64url'));
  assert.equal(claims.deviceId, registrationId);
  assert.equal(claims.seq, 1);
  assert.deepEqual(claims.command, { setInterval: 30 });
  // ttl=120; iat is stamped by the store a moment after exp is set, in whole seconds.
  assert.ok(Math.abs(claims.exp - claims.iat - 120) <= 1, `iat ${claims.iat} exp ${claims.exp}`);

  // One changed byte of the claims and the signature no longer verifies.
  const tampered = Buffer.from(JSON.stringify({ ...claims, deviceId: 'interop-cmd-2' }))
      .toString('base64url');
  assert.equal(crypto.verify('sha256', Buffer.from(`${header}.${tampered}`),
                             { key: signer.publicKey, dsaEncoding: 'ieee-p1363' },
                             Buffer.from(signature, 'base64url')), false);
});

test('a command for an unregistered device is refused with 404002', async () => {
  const sent = await postCommand('interop-cmd-nobody', { reboot: true });
  assert.equal(sent.status, 404, sent.body);
  assert.equal(JSON.parse(sent.body).errorCode, 404002);
});
