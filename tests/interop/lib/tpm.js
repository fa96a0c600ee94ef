'use strict';

// A real TPM for tss.js: swtpm in socket mode behind a small bridge that speaks the Microsoft
// simulator ("mssim") framing tss.js uses (protocol notes §4.5). swtpm's TCP channel takes raw TPM
// commands, so the bridge answers the simulator handshake and platform signals itself and forwards
// each framed command raw:
//   command port:  u32 15 (HandShake), u32 clientVersion  → u32 1, u32 0 (tpmInfo), u32 0 (ack)
//                  u32 8 (SendCommand), u8 locality, u32 n, command → u32 m, response, u32 0
//                  u32 20 (SessionEnd) or u32 21 (Stop) → close
//   platform port (command port + 1): every u32 signal (PowerOn 1, NvOn 11, ...) → u32 0
// swtpm needs no platform signals when started with not-need-init,startup-clear.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const kSendCommand = 8;
const kHandShake = 15;
const kSessionEnd = 20;
const kStop = 21;
const kStartTimeoutMs = 10000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

// freePort returns a port nothing listens on right now.
async function freePort() {
  const probe = net.createServer();
  const port = await listen(probe, 0);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// startSwtpm starts swtpm (TPM 2.0, socket mode, fresh state) and resolves once it accepts
// connections: {port, stop, logs}. It rejects with swtpm's output when swtpm is missing or
// does not listen within 10 s.
async function startSwtpm() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'devid-swtpm-'));
  const port = await freePort();
  const child = spawn('swtpm', [
    'socket', '--tpm2',
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--tpmstate', `dir=${stateDir}`,
    '--flags', 'not-need-init,startup-clear',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let exited = null;
  const exitedPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; resolve(); });
    child.on('error', (err) => { exited = { error: err.message }; resolve(); });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const stop = async () => {
    process.off('exit', killOnExit);
    if (!exited) child.kill('SIGTERM');
    await exitedPromise;
    fs.rmSync(stateDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + kStartTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`swtpm did not start (install swtpm: scripts/install-deps.sh): ` +
                      `${JSON.stringify(exited)}\n${output}`);
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`swtpm did not listen on ${port} within ${kStartTimeoutMs} ms\n${output}`);
    }
    await sleep(50);
  }
  return { port, stop, logs: () => output };
}

// forwardCommand sends one raw TPM command to swtpm and resolves to the whole response (its size
// is in bytes 2..5 of the 10-byte response header, TPM 2.0 Part 1 §18.9).
function forwardCommand(tpmSocket, command) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 10 && buf.length >= buf.readUInt32BE(2)) {
        tpmSocket.off('data', onData);
        tpmSocket.off('error', reject);
        resolve(buf.subarray(0, buf.readUInt32BE(2)));
      }
    };
    tpmSocket.on('data', onData);
    tpmSocket.once('error', reject);
    tpmSocket.write(command);
  });
}

// serveCommands handles one tss.js command connection.
function serveCommands(client, swtpmPort) {
  const tpmSocket = net.connect(swtpmPort, '127.0.0.1');
  tpmSocket.on('error', () => client.destroy());
  client.on('error', () => tpmSocket.destroy());
  client.on('close', () => tpmSocket.destroy());
  let buf = Buffer.alloc(0);
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        if (buf.length < 4) break;
        const code = buf.readUInt32BE(0);
        if (code === kHandShake) {
          if (buf.length < 8) break;
          buf = buf.subarray(8);
          const reply = Buffer.alloc(12);
          reply.writeUInt32BE(1, 0);  // server version, as the client's
          client.write(reply);  // tpmInfo 0, ack 0
        } else if (code === kSendCommand) {
          if (buf.length < 9) break;
          const n = buf.readUInt32BE(5);
          if (buf.length < 9 + n) break;
          const command = buf.subarray(9, 9 + n);
          buf = buf.subarray(9 + n);
          const response = await forwardCommand(tpmSocket, command);
          const head = Buffer.alloc(4);
          head.writeUInt32BE(response.length, 0);
          client.write(Buffer.concat([head, response, Buffer.alloc(4)]));
        } else if (code === kSessionEnd || code === kStop) {
          client.end();
          tpmSocket.end();
          return;
        } else {
          client.destroy(new Error(`mssim bridge: unknown command code ${code}`));
          return;
        }
      }
    } catch (err) {
      client.destroy(err);
    } finally {
      busy = false;
    }
    if (buf.length >= 4 && !client.destroyed) setImmediate(pump);
  };
  client.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    pump();
  });
}

// servePlatform acknowledges every platform signal.
function servePlatform(client) {
  let pending = 0;
  client.on('data', (chunk) => {
    pending += chunk.length;
    while (pending >= 4) {
      pending -= 4;
      client.write(Buffer.alloc(4));
    }
  });
  client.on('error', () => {});
}

// startBridge listens on a free pair of ports (P for commands, P+1 for the platform, as tss.js
// expects) and resolves to {port, stop}.
async function startBridge(swtpmPort) {
  for (let attempt = 0; attempt < 20; ++attempt) {
    const sockets = new Set();
    const track = (handler) => (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      handler(socket);
    };
    const commands = net.createServer(track((c) => serveCommands(c, swtpmPort)));
    const platform = net.createServer(track(servePlatform));
    const port = await listen(commands, 0);
    try {
      await listen(platform, port + 1);
    } catch (err) {
      await new Promise((resolve) => commands.close(resolve));
      continue;
    }
    const stop = async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([commands, platform].map((s) => new Promise((r) => s.close(r))));
    };
    return { port, stop };
  }
  throw new Error('mssim bridge: no free pair of ports');
}

module.exports = { startBridge, startSwtpm };
