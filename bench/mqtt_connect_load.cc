// devid_mqtt_connect_load: MQTT connects per second against a broker (connect over TLS, CONNECT
// with credentials, CONNACK, DISCONNECT), from a number of threads each connecting one client
// after another. bench/gateway.sh runs it against Mosquitto with the devid plugin and with
// Mosquitto's own password file, on the same TLS listener settings.
//
// Credentials (--auth): sas = IoT Hub SAS of group devices provisioned by devid_register_load
// (same --id-prefix/--devices), precomputed; x509 = those devices' client certificates
// (--cert-dir holds <deviceId>.pem and .key) with the IoT Hub username and no password;
// password = one --username/--password for every client; anonymous = none, or with --cert-dir
// the devices' certificates only (an mTLS listener without the plugin). Client ids are distinct
// per thread at any moment.

#include <mosquitto.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "base/url.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8883;
  std::string cafile;
  std::string auth = "sas";  // sas | password | anonymous
  std::string hub = "localhost";
  std::string group_key;
  std::string id_prefix = "gw-";
  uint64_t devices = 100;
  std::string username;
  std::string password;
  int threads = 8;
  double duration = 10;
  double warmup = 2;
  std::string label = "run";
  std::string cert_dir;
};

struct Credentials {
  std::string client_id;
  std::string username;
  std::string password;  // "" sends none
  std::string certfile;  // "" presents no client certificate
  std::string keyfile;
};

struct ConnectState {
  bool done = false;
  int rc = -1;
};

void OnConnect(mosquitto*, void* userdata, int rc) {
  auto* state = static_cast<ConnectState*>(userdata);
  state->done = true;
  state->rc = rc;
}

// ConnectOnce connects, waits for CONNACK and disconnects; true when the broker accepted.
bool ConnectOnce(const Options& o, const Credentials& c) {
  ConnectState state;
  mosquitto* m = mosquitto_new(c.client_id.c_str(), true, &state);
  if (m == nullptr) return false;
  bool ok = false;
  mosquitto_connect_callback_set(m, OnConnect);
  const char* certfile = c.certfile.empty() ? nullptr : c.certfile.c_str();
  const char* keyfile = c.keyfile.empty() ? nullptr : c.keyfile.c_str();
  if (mosquitto_tls_set(m, o.cafile.c_str(), nullptr, certfile, keyfile, nullptr) ==
          MOSQ_ERR_SUCCESS &&
      (o.auth == "anonymous" ||
       mosquitto_username_pw_set(m, c.username.c_str(),
                                 c.password.empty() ? nullptr : c.password.c_str()) ==
           MOSQ_ERR_SUCCESS) &&
      mosquitto_connect(m, o.host.c_str(), o.port, 60) == MOSQ_ERR_SUCCESS) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!state.done && std::chrono::steady_clock::now() < deadline) {
      if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) break;
    }
    ok = state.done && state.rc == 0;
    if (ok) {
      mosquitto_disconnect(m);
      mosquitto_loop(m, 10, 1);
    }
  }
  mosquitto_destroy(m);
  return ok;
}

std::string DeviceId(const Options& o, uint64_t i) {
  size_t width = std::to_string(o.devices - 1).size();
  std::string index = std::to_string(i);
  return o.id_prefix + std::string(width - index.size(), '0') + index;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"MQTT connects/s over TLS"};
  app.add_option("--host", o.host, "broker IP address");
  app.add_option("--port", o.port, "broker TLS port");
  app.add_option("--cafile", o.cafile, "PEM file of the trusted roots")->required();
  app.add_option("--auth", o.auth, "sas, password or anonymous");
  app.add_option("--hub", o.hub, "assigned hub (sas)");
  app.add_option("--group-key", o.group_key, "enrollment group key, base64 (sas)");
  app.add_option("--id-prefix", o.id_prefix, "device ID prefix (sas)");
  app.add_option("--devices", o.devices, "provisioned devices (sas)");
  app.add_option("--username", o.username, "user name (password)");
  app.add_option("--password", o.password, "password (password)");
  app.add_option("--threads", o.threads, "clients connecting at once");
  app.add_option("--duration", o.duration, "measured seconds");
  app.add_option("--warmup", o.warmup, "seconds before measuring");
  app.add_option("--label", o.label, "name of this run in the output");
  app.add_option("--cert-dir", o.cert_dir, "directory of <deviceId>.pem and .key (x509)");
  CLI11_PARSE(app, argc, argv);
  bool per_device = o.auth == "sas" || o.auth == "x509" || !o.cert_dir.empty();
  if (o.threads < 1 ||
      (per_device && (o.devices == 0 || o.devices % static_cast<uint64_t>(o.threads) != 0)) ||
      (o.auth == "sas" && o.group_key.empty()) || (o.auth == "x509" && o.cert_dir.empty())) {
    std::fprintf(stderr,
                 "devid_mqtt_connect_load: sas needs --group-key, x509 --cert-dir, and both "
                 "--devices a multiple of --threads\n");
    return 2;
  }

  // Credentials are made before measuring, so the client's HMAC is not in the loop.
  std::vector<Credentials> credentials;
  if (o.auth == "sas") {
    int64_t expiry = static_cast<int64_t>(std::time(nullptr)) + 3600;
    for (uint64_t i = 0; i < o.devices; ++i) {
      std::string id = DeviceId(o, i);
      auto key = devid::ossl::Base64Decode(*devid::pki::DeriveSymmetricKey(o.group_key, id));
      credentials.push_back(
          {id, o.hub + "/" + id + "/?api-version=2021-04-12",
           devid::pki::CreateSasToken(
               *key, devid::PercentEncodeComponent(o.hub + "/devices/" + id, true), expiry, "")});
    }
  } else if (!o.cert_dir.empty()) {
    for (uint64_t i = 0; i < o.devices; ++i) {
      std::string id = DeviceId(o, i);
      credentials.push_back({id, o.hub + "/" + id + "/?api-version=2021-04-12", "",
                             o.cert_dir + "/" + id + ".pem", o.cert_dir + "/" + id + ".key"});
    }
  } else {
    for (int t = 0; t < o.threads; ++t) {
      credentials.push_back({"bench-" + std::to_string(t), o.username, o.password});
    }
  }

  mosquitto_lib_init();
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      // Thread t uses credentials t, t + threads, ... (mod a multiple of threads): no client id
      // is used by two threads at once.
      for (size_t i = t; !stop.load(); i = (i + o.threads) % credentials.size()) {
        bool ok = ConnectOnce(o, credentials[i]);
        if (!measuring.load()) continue;
        (ok ? accepted : failed).fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
  measuring = true;
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration));
  measuring = false;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t ok = accepted.load();
  uint64_t bad = failed.load();
  stop = true;
  for (std::thread& worker : workers) worker.join();
  mosquitto_lib_cleanup();
  std::printf(
      "{\"label\":\"%s\",\"auth\":\"%s\",\"threads\":%d,\"seconds\":%.2f,"
      "\"accepted\":%llu,\"failed\":%llu,\"connects_per_s\":%.1f}\n",
      o.label.c_str(), o.auth.c_str(), o.threads, elapsed, static_cast<unsigned long long>(ok),
      static_cast<unsigned long long>(bad), static_cast<double>(ok) / elapsed);
  return bad == 0 ? 0 : 1;
}
