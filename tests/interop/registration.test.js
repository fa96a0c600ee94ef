'use strict';

// Device registration over HTTPS through azure-iot-provisioning-device(-http) and
// azure-iot-security-symmetric-key, unchanged; enrollments set up and registrations read back
// through azure-iot-provisioning-service.

const assert = require('node:assert/strict');
const { after, before, test } = require('node:test');
const { startServer } = require('./lib/server');
const {
  deriveDeviceKey, newKey, queryAll, registerDevice, serviceClient, statusOf,
  symmetricKeyEnrollment, symmetricKeyGroup,
} = require('./lib/dps');

// A registration waits Retry-After seconds between polls; a hung one fails here, not in ctest.
const kTimeout = { timeout: 60000 };

let server;
let client;

before(async () => {
  server = await startServer();
  client = serviceClient(server);
});

after(async () => {
  if (server) await server.stop();
});

async function createEnrollment(registrationId, fields = {}) {
  const { responseBody } = await client.createOrUpdateIndividualEnrollment(
      symmetricKeyEnrollment(registrationId, { primaryKey: newKey(), secondaryKey: newKey(),
                                               ...fields }));
  return responseBody;
}

async function createGroup(enrollmentGroupId) {
  const { responseBody } =
      await client.createOrUpdateEnrollmentGroup(symmetricKeyGroup(enrollmentGroupId));
  assert.ok(responseBody.attestation.symmetricKey.primaryKey, 'the group has no primary key');
  return responseBody;
}

function assertAssigned(state, registrationId, deviceId) {
  assert.equal(typeof state, 'object', `registrationState is ${JSON.stringify(state)}`);
  assert.equal(state.registrationId, registrationId);
  assert.equal(state.status, 'assigned');
  assert.equal(state.assignedHub, 'localhost');
  assert.equal(state.deviceId, deviceId);
  assert.ok(state.createdDateTimeUtc, 'createdDateTimeUtc is missing');
  assert.ok(state.etag, 'etag is missing');
}

test('registers a device with its individual enrollment primary key', kTimeout, async () => {
  const e = await createEnrollment('reg-primary', { deviceId: 'reg-primary-device' });
  const state =
      await registerDevice(server, 'reg-primary', e.attestation.symmetricKey.primaryKey);
  assertAssigned(state, 'reg-primary', 'reg-primary-device');
  assert.equal(state.substatus, 'initialAssignment');
});

test('registers a device with its individual enrollment secondary key', kTimeout, async () => {
  const e = await createEnrollment('reg-secondary');
  const state =
      await registerDevice(server, 'reg-secondary', e.attestation.symmetricKey.secondaryKey);
  assertAssigned(state, 'reg-secondary', 'reg-secondary');
});

test('registers a group device with the key derived from the group key', kTimeout, async () => {
  const g = await createGroup('reg-group');
  const key = deriveDeviceKey(g.attestation.symmetricKey.primaryKey, 'reg-group-dev-1');
  const state = await registerDevice(server, 'reg-group-dev-1', key);
  assertAssigned(state, 'reg-group-dev-1', 'reg-group-dev-1');
  if (state.symmetricKey !== undefined) {
    assert.equal(state.symmetricKey.enrollmentGroupId, 'reg-group');
  }
});

test('registers a group device with the key derived from the group secondary key', kTimeout,
     async () => {
       const g = await createGroup('reg-group-secondary');
       const key = deriveDeviceKey(g.attestation.symmetricKey.secondaryKey, 'reg-group-dev-2');
       const state = await registerDevice(server, 'reg-group-dev-2', key);
       assertAssigned(state, 'reg-group-dev-2', 'reg-group-dev-2');
     });

test('returns the device payload in registrationState.payload', kTimeout, async () => {
  const e = await createEnrollment('reg-payload');
  const payload = { modelId: 'dtmi:devid:interop;1', fw: '1.2.3' };
  const state =
      await registerDevice(server, 'reg-payload', e.attestation.symmetricKey.primaryKey, payload);
  assertAssigned(state, 'reg-payload', 'reg-payload');
  assert.deepEqual(state.payload, payload);
});

test('gets and deletes a registration state through the service client', kTimeout, async () => {
  const e = await createEnrollment('reg-state');
  await registerDevice(server, 'reg-state', e.attestation.symmetricKey.primaryKey);

  const { responseBody: state } = await client.getDeviceRegistrationState('reg-state');
  assertAssigned(state, 'reg-state', 'reg-state');

  await client.deleteDeviceRegistrationState(state);  // Sends If-Match: state.etag.
  await assert.rejects(client.getDeviceRegistrationState('reg-state'), (err) => {
    assert.equal(statusOf(err), 404, `expected 404, got ${err.name}: ${err.message}`);
    return true;
  });
  const { responseBody: still } = await client.getIndividualEnrollment('reg-state');
  assert.equal(still.registrationId, 'reg-state',
               'deleting the registration removed the enrollment');
});

test('queries the registrations of an enrollment group', kTimeout, async () => {
  const g = await createGroup('reg-group-query');
  const ids = ['reg-gq-dev-1', 'reg-gq-dev-2'];
  await Promise.all(ids.map((id) => registerDevice(
      server, id, deriveDeviceKey(g.attestation.symmetricKey.primaryKey, id))));
  const query = client.createEnrollmentGroupDeviceRegistrationStateQuery(
      { query: 'SELECT * FROM enrollmentGroups' }, 'reg-group-query', 10);
  const { items } = await queryAll(query);
  const seen = items.map((r) => r.registrationId).sort();
  assert.deepEqual(seen, ids);
  for (const r of items) assert.equal(r.status, 'assigned');
});

test('rejects a registration signed with a wrong key (UnauthorizedError)', kTimeout, async () => {
  await createEnrollment('reg-wrong-key');
  await assert.rejects(registerDevice(server, 'reg-wrong-key', newKey()), (err) => {
    assert.equal(err.name, 'UnauthorizedError', `${err.name}: ${err.message}`);
    return true;
  });
});

test('rejects a registration id that has no enrollment', kTimeout, async () => {
  await assert.rejects(registerDevice(server, 'reg-never-enrolled', newKey()));
});

test('rejects the registration of a disabled enrollment', kTimeout, async () => {
  const e = await createEnrollment('reg-disabled', { provisioningStatus: 'disabled' });
  assert.equal(e.provisioningStatus, 'disabled');
  await assert.rejects(
      registerDevice(server, 'reg-disabled', e.attestation.symmetricKey.primaryKey));
});
