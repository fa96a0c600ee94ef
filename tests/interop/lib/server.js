'use strict';

// Starts the real devid binary for one test file and points the Azure IoT Node SDKs at it.
//
// The binary comes from DEVID_BINARY (ctest sets it). Each call gets a fresh data directory, an
// ephemeral port on 127.0.0.1 and the server's own development CA. The SDKs dial port 443 of the
// host they are given and take no CA option (protocol notes §5.3, §8), and NODE_EXTRA_CA_CERTS is
// read only at process start; so, before any SDK client exists, this module sets on
// https.globalAgent the port and the CA bundle to trust. TLS verification stays on: the server
// certificate must chain to connection.json's trustBundle and cover "localhost".

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

const kListeningLine = /devid serve: listening on https:\/\/127\.0\.0\.1:(\d+)/;
const kStartTimeoutMs = 30000;
const kStopTimeoutMs = 10000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Reads DIR/connection.json, waiting briefly in case the server writes it after its first line.
async function readConnectionJson(dataDir, deadline) {
  const file = path.join(dataDir, 'connection.json');
  let lastError;
  while (Date.now() < deadline) {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      lastError = err;
    }
    await sleep(50);
  }
  throw new Error(`reading ${file}: ${lastError && lastError.message}`);
}

// startServer starts `devid serve` and resolves once it listens and connection.json is readable.
// It resolves to {config, port, host, dataDir, stop, logs}; config is connection.json as parsed.
// It rejects (and kills the process) when the binary is missing, exits early, or is not ready
// within 30 s; the error carries the server's output. Call stop() exactly once, in after().
async function startServer() {
  const binary = process.env.DEVID_BINARY;
  if (!binary) {
    throw new Error('DEVID_BINARY is not set: run the suite through ctest, or set it to the path ' +
                    'of the devid binary');
  }
  if (!fs.existsSync(binary)) throw new Error(`DEVID_BINARY=${binary} does not exist`);

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'devid-interop-'));
  const child = spawn(binary, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0'],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const verbose = Boolean(process.env.DEVID_INTEROP_VERBOSE);
  const collect = (stream) => (chunk) => {
    output += chunk.toString();
    if (verbose) stream.write(chunk);
  };
  child.stdout.on('data', collect(process.stdout));
  child.stderr.on('data', collect(process.stderr));
  // exited resolves when the process ends, or at once when it could not be started (then 'exit'
  // may never fire).
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (err) => {
      if (child.pid === undefined) resolve({ error: err.message });
    });
  });
  let hasExited = false;
  exited.then(() => { hasExited = true; });
  // A test process that dies without running after() takes the server with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  exited.then(() => process.off('exit', killOnExit));

  const failStart = async (why) => {
    if (!hasExited) child.kill('SIGKILL');
    await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
    return new Error(`devid serve did not start: ${why}\n--- server output ---\n${output}`);
  };

  const deadline = Date.now() + kStartTimeoutMs;
  let port;
  while (port === undefined) {
    const match = kListeningLine.exec(output);
    if (match) {
      port = Number(match[1]);
      break;
    }
    const event = await Promise.race([exited, sleep(50).then(() => null)]);
    if (event) throw await failStart(`${binary} exited: ${JSON.stringify(event)}`);
    if (Date.now() > deadline) throw await failStart(`no listening line in ${kStartTimeoutMs} ms`);
  }

  let config;
  try {
    config = await readConnectionJson(dataDir, deadline);
  } catch (err) {
    throw await failStart(err.message);
  }
  const missing = ['idScope', 'deviceEndpoint', 'serviceEndpoint', 'serviceConnectionString',
                   'trustBundle'].filter((field) => typeof config[field] !== 'string');
  if (missing.length) throw await failStart(`connection.json lacks ${missing.join(', ')}`);
  const endpoint = new URL(config.deviceEndpoint);
  const host = endpoint.hostname;
  const trustBundle = fs.readFileSync(config.trustBundle);

  // Every SDK request goes through https.request without an agent or a port, so the global agent
  // decides both. Agent options are merged over request options when the socket is made.
  https.globalAgent.defaultPort = Number(endpoint.port || port);
  https.globalAgent.options.ca = trustBundle;
  // The server listens on 127.0.0.1 only, but "localhost" may resolve to ::1 first; Node 18 does
  // not fall back to the next address.
  https.globalAgent.options.family = 4;

  // stop sends SIGTERM and resolves once the server has exited; it rejects, with the server's
  // output, when the server had died before, or does not exit cleanly within 10 s.
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    https.globalAgent.destroy();
    const diedEarly = hasExited;
    let killed = false;
    if (!hasExited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, kStopTimeoutMs);
      await exited;
      clearTimeout(timer);
    }
    const status = await exited;
    if (!process.env.DEVID_INTEROP_KEEP_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    let problem;
    if (diedEarly) problem = `the server died during the tests (${JSON.stringify(status)})`;
    else if (killed) problem = `the server ignored SIGTERM for ${kStopTimeoutMs} ms`;
    else if (status.code !== 0) problem = `on SIGTERM the server exited ${JSON.stringify(status)}`;
    if (problem) throw new Error(`${problem}\n--- server output ---\n${output}`);
  };

  return { config, port, host, dataDir, stop, logs: () => output };
}

module.exports = { startServer };
