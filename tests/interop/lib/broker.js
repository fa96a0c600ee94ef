'use strict';

// Starts a real Mosquitto 2.0 broker with devid's plugin on the store of a server from
// ./server.js, on a TLS listener serving the server's own certificate, for one test file.
//
// The broker and plugin come from DEVID_MOSQUITTO_BROKER and DEVID_MOSQUITTO_PLUGIN (ctest sets
// them). The listener is on 127.0.0.1 at a free port; the device SDK reaches it through the
// connection string's GatewayHostName, while HostName stays the hub the device was assigned.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const kStartTimeoutMs = 10000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the suite through ctest, or set it (see ` +
                    'CMakeLists.txt, interop_azure_sdk)');
  }
  if (!fs.existsSync(value)) throw new Error(`${name}=${value} does not exist`);
  return value;
}

// startBroker starts the broker on server's SQLite store and resolves once it accepts
// connections, to {port, x509Port, log, stop}. With x509CaFile it adds an mTLS listener
// (x509Port) that requires a client certificate verified against that file. It rejects, with the
// broker's log, when the broker exits or does not listen within 10 s. Call stop() exactly once,
// before the server's stop().
async function startBroker(server, extraConf = [], { x509CaFile } = {}) {
  const broker = requiredEnv('DEVID_MOSQUITTO_BROKER');
  const plugin = requiredEnv('DEVID_MOSQUITTO_PLUGIN');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devid-broker-'));
  const port = await freePort();
  const x509Port = x509CaFile ? await freePort() : undefined;
  const logFile = path.join(dir, 'mosquitto.log');
  const lines = [
    'per_listener_settings false',
    'allow_anonymous false',
    'persistence false',
    `listener ${port} 127.0.0.1`,
    `certfile ${path.join(server.dataDir, 'tls', 'server.pem')}`,
    `keyfile ${path.join(server.dataDir, 'tls', 'server.key')}`,
    `cafile ${server.config.trustBundle}`,
    'tls_version tlsv1.2',
    ...(x509CaFile ? [
      `listener ${x509Port} 127.0.0.1`,
      `certfile ${path.join(server.dataDir, 'tls', 'server.pem')}`,
      `keyfile ${path.join(server.dataDir, 'tls', 'server.key')}`,
      `cafile ${x509CaFile}`,
      'require_certificate true',
      'tls_version tlsv1.2',
    ] : []),
    `plugin ${plugin}`,
    `plugin_opt_store sqlite://${path.join(server.dataDir, 'devid.db')}`,
    `log_dest file ${logFile}`,
    'log_type all',
    // As root the broker would switch to the mosquitto user, who cannot read the store.
    `user ${os.userInfo().username}`,
    ...extraConf,
  ];
  fs.writeFileSync(path.join(dir, 'mosquitto.conf'), lines.join('\n') + '\n');
  const child = spawn(broker, ['-c', path.join(dir, 'mosquitto.conf')],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk) => { output += chunk.toString(); });
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (err) => resolve({ error: err.message }));
  });
  let hasExited = false;
  exited.then(() => { hasExited = true; });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  exited.then(() => process.off('exit', killOnExit));

  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '') + output;
  const deadline = Date.now() + kStartTimeoutMs;
  while (!(await canConnect(port)) || (x509Port && !(await canConnect(x509Port)))) {
    if (hasExited || Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`mosquitto did not start\n--- broker log ---\n${log()}`);
    }
    await sleep(20);
  }

  const stop = async () => {
    if (!hasExited) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { port, x509Port, log, stop };
}

module.exports = { startBroker };
