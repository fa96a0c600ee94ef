'use strict';

// X.509 registration over HTTPS with mutual TLS through azure-iot-provisioning-device(-http) and
// azure-iot-security-x509, unchanged: a self-signed device certificate through its individual
// enrollment, a leaf + intermediate through a group that trusts the vendor's root, and a leaf +
// intermediate through a group whose caReferences names a root verified by proof of possession
// (uploaded, code and proof with the devid CLI; group through the service SDK). The certificates
// are made with the openssl command line.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { X509Security } = require('azure-iot-security-x509');
const { startServer } = require('./lib/server');
const { serviceClient, statusOf } = require('./lib/dps');

const kTimeout = { timeout: 60000 };

let server;
let client;
let dir;

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function read(name) {
  return fs.readFileSync(path.join(dir, name), 'utf8');
}

const kExtensions = `
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[device]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

const kP256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

before(async () => {
  server = await startServer();
  client = serviceClient(server);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devid-x509-'));
  fs.writeFileSync(path.join(dir, 'ext.cnf'), kExtensions);
  openssl('req', '-x509', ...kP256, '-keyout', 'self.key', '-subj', '/CN=x509-self', '-days', '30',
          '-out', 'self.pem', '-config', 'ext.cnf', '-extensions', 'device');
  openssl('req', '-x509', ...kP256, '-keyout', 'root.key', '-subj', '/CN=Vendor Root', '-days',
          '365', '-out', 'root.pem', '-config', 'ext.cnf', '-extensions', 'root');
  openssl('req', '-new', ...kP256, '-keyout', 'int.key', '-subj', '/CN=Vendor Intermediate',
          '-out', 'int.csr', '-config', 'ext.cnf');
  openssl('x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key',
          '-CAcreateserial', '-days', '365', '-extfile', 'ext.cnf', '-extensions', 'intermediate',
          '-out', 'int.pem');
  openssl('req', '-new', ...kP256, '-keyout', 'leaf.key', '-subj', '/CN=x509-group-dev',
          '-out', 'leaf.csr', '-config', 'ext.cnf');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key',
          '-CAcreateserial', '-days', '30', '-extfile', 'ext.cnf', '-extensions', 'device',
          '-out', 'leaf.pem');
  // A second vendor, for the group over a verified CA certificate.
  openssl('req', '-x509', ...kP256, '-keyout', 'ca-root.key', '-subj', '/CN=Verified Root',
          '-days', '365', '-out', 'ca-root.pem', '-config', 'ext.cnf', '-extensions', 'root');
  openssl('req', '-new', ...kP256, '-keyout', 'ca-int.key', '-subj', '/CN=Verified Intermediate',
          '-out', 'ca-int.csr', '-config', 'ext.cnf');
  openssl('x509', '-req', '-in', 'ca-int.csr', '-CA', 'ca-root.pem', '-CAkey', 'ca-root.key',
          '-CAcreateserial', '-days', '365', '-extfile', 'ext.cnf', '-extensions', 'intermediate',
          '-out', 'ca-int.pem');
  openssl('req', '-new', ...kP256, '-keyout', 'ca-leaf.key', '-subj', '/CN=x509-ca-dev',
          '-out', 'ca-leaf.csr', '-config', 'ext.cnf');
  openssl('x509', '-req', '-in', 'ca-leaf.csr', '-CA', 'ca-int.pem', '-CAkey', 'ca-int.key',
          '-CAcreateserial', '-days', '30', '-extfile', 'ext.cnf', '-extensions', 'device',
          '-out', 'ca-leaf.pem');
});

// devid runs the devid CLI against the server and returns its JSON output.
function devid(...args) {
  const out = execFileSync(process.env.DEVID_BINARY,
                           [...args, '-o', 'json', '--connection',
                            path.join(server.dataDir, 'connection.json')],
                           { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}

after(async () => {
  if (server) await server.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function register(registrationId, cert, key) {
  const security = new X509Security(registrationId, { cert, key });
  return ProvisioningDeviceClient.create(server.host, server.config.idScope, new Http(), security)
      .register();
}

test('registers a self-signed certificate through its individual enrollment', kTimeout,
     async () => {
  await client.createOrUpdateIndividualEnrollment({
    registrationId: 'x509-self',
    attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: read('self.pem') } } } },
  });
  const state = await register('x509-self', read('self.pem'), read('self.key'));
  assert.equal(state.status, 'assigned');
  assert.equal(state.deviceId, 'x509-self');
  assert.equal(state.x509.certificateInfo.subjectName, 'CN=x509-self');
});

test('registers a leaf and intermediate through a group trusting the root', kTimeout, async () => {
  await client.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'x509-vendor',
    attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: read('root.pem') } } } },
  });
  const state =
      await register('x509-group-dev', read('leaf.pem') + read('int.pem'), read('leaf.key'));
  assert.equal(state.status, 'assigned');
  assert.equal(state.x509.enrollmentGroupId, 'x509-vendor');
  assert.equal(state.x509.signingCertificateInfo.subjectName, 'CN=Vendor Root');
});

test('refuses a certificate no enrollment trusts', kTimeout, async () => {
  await assert.rejects(register('x509-group-dev', read('self.pem'), read('self.key')),
                       (err) => statusOf(err) === 401 || /nauthorized/.test(String(err)));
});

test('registers a leaf and intermediate through a group over a verified CA certificate', kTimeout,
     async () => {
  const group = {
    enrollmentGroupId: 'x509-verified-ca',
    attestation: { type: 'x509', x509: { caReferences: { primary: 'verified-root' } } },
  };
  devid('ca-certificate', 'add', 'verified-root', '--certificate', path.join(dir, 'ca-root.pem'));
  // Unverified, it cannot back a group.
  await assert.rejects(client.createOrUpdateEnrollmentGroup(group),
                       (err) => statusOf(err) === 400 || /400010/.test(String(err)));
  const { verificationCode } = devid('ca-certificate', 'verification-code', 'verified-root');
  openssl('req', '-new', ...kP256, '-keyout', 'proof.key', '-subj', `/CN=${verificationCode}`,
          '-out', 'proof.csr', '-config', 'ext.cnf');
  openssl('x509', '-req', '-in', 'proof.csr', '-CA', 'ca-root.pem', '-CAkey', 'ca-root.key',
          '-CAcreateserial', '-days', '1', '-out', 'proof.pem');
  const verified =
      devid('ca-certificate', 'verify', 'verified-root', '--certificate', path.join(dir, 'proof.pem'));
  assert.equal(verified.isVerified, true);

  await client.createOrUpdateEnrollmentGroup(group);
  const state =
      await register('x509-ca-dev', read('ca-leaf.pem') + read('ca-int.pem'), read('ca-leaf.key'));
  assert.equal(state.status, 'assigned');
  assert.equal(state.x509.enrollmentGroupId, 'x509-verified-ca');
  assert.equal(state.x509.signingCertificateInfo.subjectName, 'CN=Verified Root');
});
