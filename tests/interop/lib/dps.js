'use strict';

// Thin wrappers over the unchanged Azure IoT Node SDKs, so the tests read as scenarios.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

// serviceClient returns a ProvisioningServiceClient for the server's service connection string.
function serviceClient(server) {
  return ProvisioningServiceClient.fromConnectionString(server.config.serviceConnectionString);
}

// registerDevice runs the SDK's symmetric-key registration over HTTPS and resolves to the
// registrationState it returns; it rejects with the SDK's error.
function registerDevice(server, registrationId, deviceKey, payload) {
  const security = new SymmetricKeySecurityClient(registrationId, deviceKey);
  const client =
      ProvisioningDeviceClient.create(server.host, server.config.idScope, new Http(), security);
  if (payload !== undefined) client.setProvisioningPayload(payload);
  return client.register();
}

// deriveDeviceKey is the group-enrollment device key: base64(HMAC-SHA256(groupKey, regId)).
function deriveDeviceKey(groupKey, registrationId) {
  return crypto.createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId)
      .digest('base64');
}

// newKey returns a fresh random symmetric key, base64 of 64 bytes as DPS generates them.
function newKey() {
  return crypto.randomBytes(64).toString('base64');
}

// symmetricKeyEnrollment builds an IndividualEnrollment; keys are left out when not given, so the
// server generates them.
function symmetricKeyEnrollment(registrationId, { primaryKey, secondaryKey, ...rest } = {}) {
  const symmetricKey = {};
  if (primaryKey) symmetricKey.primaryKey = primaryKey;
  if (secondaryKey) symmetricKey.secondaryKey = secondaryKey;
  return { registrationId, attestation: { type: 'symmetricKey', symmetricKey }, ...rest };
}

// symmetricKeyGroup builds an EnrollmentGroup with server-generated keys.
function symmetricKeyGroup(enrollmentGroupId, rest = {}) {
  return { enrollmentGroupId, attestation: { type: 'symmetricKey', symmetricKey: {} }, ...rest };
}

// queryAll pages through a Query to its end; it resolves to {items, pages} (pages: page sizes).
// The token is passed explicitly: Query.next() without arguments sends no x-ms-continuation and
// so always returns the first page again.
async function queryAll(query) {
  const items = [];
  const pages = [];
  do {
    const { responseBody } = await query.next(query.continuationToken);
    assert.ok(Array.isArray(responseBody), `a query page is ${JSON.stringify(responseBody)}`);
    pages.push(responseBody.length);
    items.push(...responseBody);
    if (pages.length > 1000) throw new Error('query did not end after 1000 pages');
  } while (query.hasMoreResults);
  return { items, pages };
}

// runBulk runs a bulk enrollment operation. It must use the callback form: without a callback
// azure-iot-provisioning-service 1.11.2 never settles the promise.
function runBulk(client, mode, enrollments) {
  return new Promise((resolve, reject) => {
    client.runBulkEnrollmentOperation({ mode, enrollments }, (err, result) => {
      if (err) reject(err);
      else resolve(result);
    });
  });
}

// statusOf is the HTTP status behind an SDK error, when the SDK kept the response.
function statusOf(err) {
  return (err && err.response && err.response.statusCode) ||
         (err && err.transportObject && err.transportObject.statusCode);
}

module.exports = {
  deriveDeviceKey,
  newKey,
  queryAll,
  registerDevice,
  runBulk,
  serviceClient,
  statusOf,
  symmetricKeyEnrollment,
  symmetricKeyGroup,
};
