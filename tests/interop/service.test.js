'use strict';

// The DPS service (management) API through azure-iot-provisioning-service, unchanged.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, test } = require('node:test');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { startServer } = require('./lib/server');
const {
  newKey, queryAll, runBulk, serviceClient, statusOf, symmetricKeyEnrollment, symmetricKeyGroup,
} = require('./lib/dps');

let server;
let client;

before(async () => {
  server = await startServer();
  client = serviceClient(server);
});

after(async () => {
  if (server) await server.stop();
});

async function assertNotFound(promise) {
  await assert.rejects(promise, (err) => {
    assert.equal(statusOf(err), 404, `expected 404, got ${err.name}: ${err.message}`);
    return true;
  });
}

async function assertInvalidEtag(promise) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, 'InvalidEtagError', `${err.name}: ${err.message}`);
    assert.equal(statusOf(err), 412);
    return true;
  });
}

function assertBase64Key(key, what) {
  assert.equal(typeof key, 'string', `${what} is missing`);
  assert.match(key, /^[A-Za-z0-9+/]+={0,2}$/, `${what} is not base64`);
  assert.ok(Buffer.from(key, 'base64').length >= 32, `${what} is shorter than 32 bytes`);
}

test('writes connection.json with what a client needs', () => {
  const { config, port } = server;
  assert.match(config.idScope, /^0ne\w+$/);
  assert.equal(config.deviceEndpoint, `https://localhost:${port}`);
  assert.equal(config.serviceEndpoint, `https://localhost:${port}`);
  assert.match(config.serviceConnectionString, new RegExp(
      '^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;' +
      'SharedAccessKey=[A-Za-z0-9+/]+={0,2}$'));
  assert.ok(path.isAbsolute(config.trustBundle), `trustBundle ${config.trustBundle} is relative`);
  assert.match(fs.readFileSync(config.trustBundle, 'utf8'), /-----BEGIN CERTIFICATE-----/);
});

test('rejects a service call signed with a wrong key (UnauthorizedError)', async () => {
  const connectionString = server.config.serviceConnectionString.replace(
      /SharedAccessKey=.*$/, `SharedAccessKey=${newKey()}`);
  const wrong = ProvisioningServiceClient.fromConnectionString(connectionString);
  await assert.rejects(wrong.getIndividualEnrollment('svc-anything'), (err) => {
    assert.equal(err.name, 'UnauthorizedError', `${err.name}: ${err.message}`);
    return true;
  });
});

test('creates an individual symmetric-key enrollment with the keys it is given', async () => {
  const primaryKey = newKey();
  const secondaryKey = newKey();
  const { responseBody: e, httpResponse } = await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment('svc-given-keys', {
        primaryKey, secondaryKey, deviceId: 'svc-given-keys-device',
        initialTwin: { tags: { site: 'lab' }, properties: { desired: { interval: 10 } } },
      }));
  assert.equal(httpResponse.statusCode, 200);
  assert.equal(e.registrationId, 'svc-given-keys');
  assert.equal(e.deviceId, 'svc-given-keys-device');
  assert.equal(e.attestation.type, 'symmetricKey');
  assert.equal(e.attestation.symmetricKey.primaryKey, primaryKey);
  assert.equal(e.attestation.symmetricKey.secondaryKey, secondaryKey);
  assert.equal(e.provisioningStatus, 'enabled');
  assert.ok(e.etag, 'etag is missing');
  assert.ok(e.createdDateTimeUtc, 'createdDateTimeUtc is missing');
  assert.ok(e.lastUpdatedDateTimeUtc, 'lastUpdatedDateTimeUtc is missing');
});

test('generates both symmetric keys when an enrollment omits them', async () => {
  const { responseBody: e } =
      await client.createOrUpdateIndividualEnrollment(symmetricKeyEnrollment('svc-generated-keys'));
  assert.equal(e.registrationId, 'svc-generated-keys');
  assertBase64Key(e.attestation.symmetricKey.primaryKey, 'primaryKey');
  assertBase64Key(e.attestation.symmetricKey.secondaryKey, 'secondaryKey');
  assert.notEqual(e.attestation.symmetricKey.primaryKey, e.attestation.symmetricKey.secondaryKey);
});

test('gets an individual enrollment as it was stored', async () => {
  const primaryKey = newKey();
  const { responseBody: created } = await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment('svc-get', { primaryKey, secondaryKey: newKey() }));
  const { responseBody: got } = await client.getIndividualEnrollment('svc-get');
  assert.equal(got.registrationId, 'svc-get');
  assert.equal(got.etag, created.etag);
  assert.equal(got.attestation.symmetricKey.primaryKey, primaryKey);
  assert.equal(got.provisioningStatus, 'enabled');
});

test('updates an individual enrollment with its current etag', async () => {
  const { responseBody: created } = await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment('svc-update'));
  const changed = { ...created, provisioningStatus: 'disabled',
                    initialTwin: { tags: { site: 'moved' }, properties: { desired: {} } } };
  const { responseBody: updated } = await client.createOrUpdateIndividualEnrollment(changed);
  assert.equal(updated.provisioningStatus, 'disabled');
  assert.equal(updated.initialTwin.tags.site, 'moved');
  assert.ok(updated.etag, 'etag is missing');
  assert.notEqual(updated.etag, created.etag, 'the etag did not change on update');
  assert.equal(updated.attestation.symmetricKey.primaryKey,
               created.attestation.symmetricKey.primaryKey);
  const { responseBody: got } = await client.getIndividualEnrollment('svc-update');
  assert.equal(got.provisioningStatus, 'disabled');
  assert.equal(got.etag, updated.etag);
});

test('rejects an update with a stale etag (412, InvalidEtagError)', async () => {
  const { responseBody: created } = await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment('svc-stale-etag'));
  await client.createOrUpdateIndividualEnrollment({ ...created, provisioningStatus: 'disabled' });
  // created.etag is now stale.
  await assertInvalidEtag(
      client.createOrUpdateIndividualEnrollment({ ...created, provisioningStatus: 'enabled' }));
  const { responseBody: got } = await client.getIndividualEnrollment('svc-stale-etag');
  assert.equal(got.provisioningStatus, 'disabled', 'the stale update was applied');
});

test('pages an enrollment query two at a time with continuation tokens', async () => {
  const ids = ['svc-page-0', 'svc-page-1', 'svc-page-2', 'svc-page-3', 'svc-page-4'];
  for (const id of ids) await client.createOrUpdateIndividualEnrollment(symmetricKeyEnrollment(id));
  const query = client.createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' }, 2);
  const { items, pages } = await queryAll(query);
  for (const size of pages) assert.ok(size <= 2, `a page had ${size} items: ${pages}`);
  assert.ok(pages.length >= 3, `5 enrollments came in ${pages.length} page(s) of at most 2`);
  const seen = items.map((e) => e.registrationId);
  assert.equal(new Set(seen).size, seen.length, `an enrollment came twice: ${seen}`);
  for (const id of ids) assert.ok(seen.includes(id), `${id} is missing from ${seen}`);
  assert.equal(query.hasMoreResults, false);
});

test('returns the attestation mechanism of an individual enrollment', async () => {
  const primaryKey = newKey();
  const secondaryKey = newKey();
  await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment('svc-attestation', { primaryKey, secondaryKey }));
  const { responseBody: a } =
      await client.getIndividualEnrollmentAttestationMechanism('svc-attestation');
  assert.equal(a.type, 'symmetricKey');
  assert.equal(a.symmetricKey.primaryKey, primaryKey);
  assert.equal(a.symmetricKey.secondaryKey, secondaryKey);
});

test('deletes an individual enrollment, after which it is not found', async () => {
  const { responseBody: created } = await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment('svc-delete'));
  await client.deleteIndividualEnrollment(created);  // Sends If-Match: created.etag.
  await assertNotFound(client.getIndividualEnrollment('svc-delete'));
  await client.createOrUpdateIndividualEnrollment(symmetricKeyEnrollment('svc-delete-by-id'));
  await client.deleteIndividualEnrollment('svc-delete-by-id');
  await assertNotFound(client.getIndividualEnrollment('svc-delete-by-id'));
});

test('gets a missing individual enrollment as not found', async () => {
  await assertNotFound(client.getIndividualEnrollment('svc-never-created'));
});

test('creates, gets, updates and deletes an enrollment group', async () => {
  const { responseBody: created } = await client.createOrUpdateEnrollmentGroup(
      symmetricKeyGroup('svc-group', { initialTwin: { tags: { fleet: 'a' }, properties: {} } }));
  assert.equal(created.enrollmentGroupId, 'svc-group');
  assert.equal(created.attestation.type, 'symmetricKey');
  assertBase64Key(created.attestation.symmetricKey.primaryKey, 'group primaryKey');
  assertBase64Key(created.attestation.symmetricKey.secondaryKey, 'group secondaryKey');
  assert.equal(created.provisioningStatus, 'enabled');
  assert.ok(created.etag, 'etag is missing');

  const { responseBody: got } = await client.getEnrollmentGroup('svc-group');
  assert.equal(got.etag, created.etag);
  assert.equal(got.attestation.symmetricKey.primaryKey,
               created.attestation.symmetricKey.primaryKey);

  const { responseBody: updated } = await client.createOrUpdateEnrollmentGroup(
      { ...created, initialTwin: { tags: { fleet: 'b' }, properties: {} } });
  assert.equal(updated.initialTwin.tags.fleet, 'b');
  assert.notEqual(updated.etag, created.etag, 'the etag did not change on update');
  await assertInvalidEtag(client.createOrUpdateEnrollmentGroup({ ...created }));

  await assertInvalidEtag(client.deleteEnrollmentGroup('svc-group', created.etag));
  await client.deleteEnrollmentGroup(updated);
  await assertNotFound(client.getEnrollmentGroup('svc-group'));
});

test('returns the attestation mechanism of an enrollment group (lowercase enrollmentgroups path)',
     async () => {
       const { responseBody: created } =
           await client.createOrUpdateEnrollmentGroup(symmetricKeyGroup('svc-group-attestation'));
       // The SDK sends POST /enrollmentgroups/{id}/attestationmechanism, all lowercase.
       const { responseBody: a } =
           await client.getEnrollmentGroupAttestationMechanism('svc-group-attestation');
       assert.equal(a.type, 'symmetricKey');
       assert.equal(a.symmetricKey.primaryKey, created.attestation.symmetricKey.primaryKey);
       assert.equal(a.symmetricKey.secondaryKey, created.attestation.symmetricKey.secondaryKey);
     });

test('queries enrollment groups', async () => {
  for (const id of ['svc-gq-0', 'svc-gq-1', 'svc-gq-2']) {
    await client.createOrUpdateEnrollmentGroup(symmetricKeyGroup(id));
  }
  const query =
      client.createEnrollmentGroupQuery({ query: 'SELECT * FROM enrollmentGroups' }, 2);
  const { items, pages } = await queryAll(query);
  for (const size of pages) assert.ok(size <= 2, `a page had ${size} items: ${pages}`);
  const seen = items.map((g) => g.enrollmentGroupId);
  for (const id of ['svc-gq-0', 'svc-gq-1', 'svc-gq-2']) {
    assert.ok(seen.includes(id), `${id} is missing from ${seen}`);
  }
});

test('bulk create adds every enrollment (runBulkEnrollmentOperation, callback form)', async () => {
  const ids = ['svc-bulk-0', 'svc-bulk-1', 'svc-bulk-2'];
  const result = await runBulk(client, 'create', ids.map((id) => symmetricKeyEnrollment(id)));
  assert.equal(result.isSuccessful, true, JSON.stringify(result));
  for (const id of ids) {
    const { responseBody: e } = await client.getIndividualEnrollment(id);
    assert.equal(e.registrationId, id);
    assertBase64Key(e.attestation.symmetricKey.primaryKey, `${id} primaryKey`);
  }
});

test('bulk create reports an enrollment that already exists', async () => {
  await client.createOrUpdateIndividualEnrollment(symmetricKeyEnrollment('svc-bulk-dup'));
  const result = await runBulk(client, 'create', [symmetricKeyEnrollment('svc-bulk-dup'),
                                                  symmetricKeyEnrollment('svc-bulk-fresh')]);
  assert.equal(result.isSuccessful, false, JSON.stringify(result));
  assert.ok(Array.isArray(result.errors), JSON.stringify(result));
  assert.deepEqual(result.errors.map((e) => e.registrationId), ['svc-bulk-dup'],
                   JSON.stringify(result));
});

test('bulk delete removes every enrollment', async () => {
  const ids = ['svc-bulk-del-0', 'svc-bulk-del-1'];
  const created = await runBulk(client, 'create', ids.map((id) => symmetricKeyEnrollment(id)));
  assert.equal(created.isSuccessful, true, JSON.stringify(created));
  const result = await runBulk(client, 'delete', ids.map((id) => symmetricKeyEnrollment(id)));
  assert.equal(result.isSuccessful, true, JSON.stringify(result));
  for (const id of ids) await assertNotFound(client.getIndividualEnrollment(id));
});
