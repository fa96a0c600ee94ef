#pragma once

// Swtpm: one software TPM 2.0 (swtpm in socket mode) for integration tests, driven by tpm2-tools
// the way a device's TPM stack drives it. Needs swtpm, swtpm-tools and tpm2-tools
// (scripts/install-deps.sh); a missing tool fails the test.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "loopback_socket.h"
#include "server_process.h"

namespace devid::testing {

// Which finds a program on PATH ("" when absent).
inline std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// FreePortPair returns a port P with P and P+1 free: the swtpm TCTI finds the control channel at
// the command port + 1.
inline uint16_t FreePortPair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint16_t port = FreePort();
    if (port != 0 && port < 65535 && LoopbackSocket(port).port() != 0 &&
        LoopbackSocket(port + 1).port() != 0) {
      return port;
    }
  }
  return 0;
}

// Manufacture runs swtpm_setup on state_dir as a TPM vendor's line would: an EK (persisted at
// 0x81010001) and its certificate in NV index 0x01c00002, issued by swtpm's local CA whose state
// (root, intermediate "issuercert") lives in ca_dir and is created on first use. Returns false
// with a test failure when swtpm_setup fails.
inline bool Manufacture(const std::filesystem::path& state_dir, const std::filesystem::path& ca_dir) {
  std::string setup = Which("swtpm_setup");
  EXPECT_FALSE(setup.empty()) << "swtpm_setup is not installed (swtpm-tools)";
  if (setup.empty()) return false;
  std::filesystem::create_directories(state_dir);
  std::filesystem::create_directories(ca_dir);
  // Own config files, so the test never touches the system-wide local CA.
  WriteFile(ca_dir / "swtpm-localca.conf",
            "statedir = " + ca_dir.string() + "\nsigningkey = " + (ca_dir / "signkey.pem").string() +
                "\nissuercert = " + (ca_dir / "issuercert.pem").string() +
                "\ncertserial = " + (ca_dir / "certserial").string() + "\n");
  WriteFile(ca_dir / "swtpm-localca.options", "--platform-manufacturer devid-test\n");
  WriteFile(ca_dir / "swtpm_setup.conf",
            "create_certs_tool = " + Which("swtpm_localca") +
                "\ncreate_certs_tool_config = " + (ca_dir / "swtpm-localca.conf").string() +
                "\ncreate_certs_tool_options = " + (ca_dir / "swtpm-localca.options").string() +
                "\nactive_pcr_banks = sha256\n");
  CommandResult r = RunCommand({setup, "--tpm2", "--tpmstate", state_dir.string(),
                                "--create-ek-cert", "--config",
                                (ca_dir / "swtpm_setup.conf").string(), "--overwrite"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  return r.exit_code == 0;
}

// ManufacturerRootsPem returns ca_dir's local CA chain (root, then intermediate) as PEM: the
// bundle a service configures as TPM manufacturer roots.
inline std::string ManufacturerRootsPem(const std::filesystem::path& ca_dir) {
  return ReadFile(ca_dir / "swtpm-localca-rootca-cert.pem") + ReadFile(ca_dir / "issuercert.pem");
}

// DeviceRegisterArgs is `devid device register --tpm` (without the program) for the TPM at tcti
// against server, trusting trust_bundle (the server's own by default), printing JSON.
inline std::vector<std::string> DeviceRegisterArgs(const ServerProcess& server,
                                                   const std::string& tcti,
                                                   std::string trust_bundle = "") {
  if (trust_bundle.empty()) trust_bundle = server.trust_bundle_file();
  return {"device",
          "register",
          "--tpm",
          "--tcti",
          tcti,
          "--id-scope",
          server.id_scope(),
          "--endpoint",
          server.device_endpoint(),
          "--trust-bundle",
          trust_bundle,
          "-o",
          "json"};
}

// Swtpm is one software TPM 2.0 in socket mode with its state in dir, started as a daemon (it
// forks once its sockets listen) and stopped by the destructor. Tool runs a tpm2-tools command
// against it. With ek_ca_dir, the TPM is first manufactured (Manufacture) by that local CA.
class Swtpm {
 public:
  static std::unique_ptr<Swtpm> Start(const std::filesystem::path& dir,
                                      const std::filesystem::path& ek_ca_dir = {}) {
    std::string swtpm = Which("swtpm");
    EXPECT_FALSE(swtpm.empty()) << "swtpm is not installed (scripts/install-deps.sh)";
    if (swtpm.empty()) return nullptr;
    std::filesystem::create_directories(dir / "state");
    if (!ek_ca_dir.empty() && !Manufacture(dir / "state", ek_ca_dir)) return nullptr;
    auto tpm = std::unique_ptr<Swtpm>(new Swtpm(dir));
    for (int attempt = 0; attempt < 5 && tpm->pid_ <= 0; ++attempt) {
      tpm->port_ = FreePortPair();
      std::string port = std::to_string(tpm->port_), ctrl = std::to_string(tpm->port_ + 1);
      CommandResult r = RunCommand({swtpm, "socket", "--tpm2", "--daemon", "--server",
                                    "type=tcp,port=" + port + ",bindaddr=127.0.0.1", "--ctrl",
                                    "type=tcp,port=" + ctrl + ",bindaddr=127.0.0.1", "--tpmstate",
                                    "dir=" + (dir / "state").string(), "--pid",
                                    "file=" + (dir / "swtpm.pid").string(), "--flags",
                                    "not-need-init,startup-clear"});
      if (r.exit_code == 0) tpm->pid_ = std::atoi(ReadFile(dir / "swtpm.pid").c_str());
    }
    EXPECT_GT(tpm->pid_, 0) << "swtpm did not start";
    if (tpm->pid_ <= 0) return nullptr;
    return tpm;
  }

  // The destructor returns once swtpm has exited: it writes its state on the way out, which would
  // otherwise land in a directory the test is removing and leave it behind.
  ~Swtpm() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    std::filesystem::path stat = "/proc/" + std::to_string(pid_) + "/stat";
    for (int i = 0; i < 250; ++i) {
      std::string fields = ReadFile(stat);  // "pid (comm) state ..."; "" once reaped
      size_t comm_end = fields.rfind(')');
      if (comm_end == std::string::npos || fields.compare(comm_end + 1, 3, " Z ") == 0) return;
      ::usleep(20'000);
    }
  }

  // Tool runs tpm2_<name> args against this TPM; a failure is a test failure with its stderr.
  std::string Tool(const std::string& name, std::vector<std::string> args) {
    std::string path = Which("tpm2_" + name);
    EXPECT_FALSE(path.empty()) << "tpm2_" << name
                               << " is not installed (tpm2-tools, scripts/install-deps.sh)";
    if (path.empty()) return "";
    args.insert(args.begin(), path);
    CommandResult r = RunCommand(args, {"TPM2TOOLS_TCTI=" + Tcti()});
    last_exit_ = r.exit_code;
    last_err_ = r.err;
    return r.out;
  }
  bool ok() const { return last_exit_ == 0; }
  const std::string& err() const { return last_err_; }

  std::string Tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path File(const std::string& name) const { return dir_ / name; }

  // ProvisionAzureKeys creates the EK and SRK at Azure's handles and templates (protocol notes
  // §4.1) and returns their TPM2B_PUBLIC bytes.
  void ProvisionAzureKeys(std::string& ek, std::string& srk) {
    // A manufactured TPM already has its EK at 0x81010001.
    Tool("readpublic", {"-c", "0x81010001", "-o", File("ek.pub")});
    if (!ok()) Tool("createek", {"-c", "0x81010001", "-G", "rsa", "-u", File("ek.pub")});
    ASSERT_TRUE(ok()) << err();
    Tool("createprimary", {"-C", "o", "-g", "sha256", "-G", "rsa2048:null:aes128cfb", "-a",
                           "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|"
                           "userwithauth|noda",
                           "-c", File("srk.ctx")});
    ASSERT_TRUE(ok()) << err();
    Tool("evictcontrol", {"-C", "o", "-c", File("srk.ctx"), "0x81000001"});
    ASSERT_TRUE(ok()) << err();
    Tool("readpublic", {"-c", "0x81000001", "-o", File("srk.pub")});
    ASSERT_TRUE(ok()) << err();
    FlushTransients();
    ek = ReadFile(File("ek.pub"));
    srk = ReadFile(File("srk.pub"));
  }

  // ActivateBlob does what a DPS device does with an activation blob (§4.3): ActivateCredential
  // with the EK under a PolicySecret(endorsement) session, Import under the SRK with the
  // recovered inner key, Load. Returns false (with err()) when the TPM refuses a step.
  bool ActivateBlob(const std::string& blob) {
    std::vector<std::string> fields;
    for (size_t i = 0; i + 2 <= blob.size();) {
      size_t n = static_cast<uint8_t>(blob[i]) << 8 | static_cast<uint8_t>(blob[i + 1]);
      fields.push_back(blob.substr(i, 2 + n));  // each field keeps its TPM2B size
      i += 2 + n;
    }
    if (fields.size() != 6) {
      last_err_ = "the blob has " + std::to_string(fields.size()) + " fields, not 6";
      return false;
    }
    // tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
    // TPM2B_ENCRYPTED_SECRET.
    WriteFile(File("cred.blob"),
              std::string("\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) + fields[0] + fields[1]);
    WriteFile(File("dup.priv"), fields[2]);
    WriteFile(File("seed.bin"), fields[3]);
    WriteFile(File("id.pub"), fields[4]);
    FlushTransients();
    Tool("startauthsession", {"--policy-session", "-S", File("session.ctx")});
    if (!ok()) return false;
    Tool("policysecret", {"-S", File("session.ctx"), "-c", "e"});
    if (!ok()) return false;
    Tool("activatecredential",
         {"-c", "0x81000001", "-C", "0x81010001", "-i", File("cred.blob"), "-o", File("inner.key"),
          "-P", "session:" + File("session.ctx").string()});
    bool activated = ok();
    std::string activate_err = err();
    Tool("flushcontext", {File("session.ctx")});
    if (!activated) {
      last_err_ = activate_err;
      last_exit_ = 1;
      return false;
    }
    Tool("import", {"-C", "0x81000001", "-u", File("id.pub"), "-i", File("dup.priv"), "-s",
                    File("seed.bin"), "-k", File("inner.key"), "-r", File("id.priv")});
    if (!ok()) return false;
    Tool("load",
         {"-C", "0x81000001", "-u", File("id.pub"), "-r", File("id.priv"), "-c", File("id.ctx")});
    return ok();
  }

  // ReadEkCertificate returns the RSA EK certificate (DER) from NV index 0x01c00002 (TCG EK
  // Credential Profile §2.2.1.5).
  std::string ReadEkCertificate() {
    Tool("nvread", {"0x01c00002", "-o", File("ek-cert.der")});
    EXPECT_TRUE(ok()) << err();
    return ReadFile(File("ek-cert.der"));
  }

  // CreateAk creates an attestation key under the EK (RSA-2048, restricted signing, RSASSA
  // SHA-256) and returns its TPM2B_PUBLIC; it stays usable as File("ak.ctx").
  std::string CreateAk() {
    FlushTransients();
    Tool("createak", {"-C", "0x81010001", "-c", File("ak.ctx"), "-G", "rsa", "-g", "sha256",
                      "-s", "rsassa", "-u", File("ak.pub"), "-n", File("ak.name")});
    EXPECT_TRUE(ok()) << err();
    FlushTransients();
    return ReadFile(File("ak.pub"));
  }

  // ActivateAkCredential activates credential (TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET) with the
  // EK for the AK and returns the secret; false (with err()) when the TPM refuses.
  bool ActivateAkCredential(const std::string& credential, std::string& secret) {
    WriteFile(File("ak-cred.blob"), std::string("\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) + credential);
    FlushTransients();
    Tool("startauthsession", {"--policy-session", "-S", File("ak-session.ctx")});
    if (!ok()) return false;
    Tool("policysecret", {"-S", File("ak-session.ctx"), "-c", "e"});
    if (!ok()) return false;
    Tool("activatecredential", {"-c", File("ak.ctx"), "-C", "0x81010001", "-i",
                                File("ak-cred.blob"), "-o", File("ak-secret.bin"), "-P",
                                "session:" + File("ak-session.ctx").string()});
    bool activated = ok();
    std::string activate_err = err();
    Tool("flushcontext", {File("ak-session.ctx")});
    last_exit_ = activated ? 0 : 1;
    last_err_ = activate_err;
    if (activated) secret = ReadFile(File("ak-secret.bin"));
    return activated;
  }

  // Quote runs TPM2_Quote with the AK over pcrs ("sha256:0,7") and nonce (hex, "" for none);
  // attest gets the TPMS_ATTEST, signature the TPMT_SIGNATURE.
  void Quote(const std::string& pcrs, const std::string& nonce_hex, std::string& attest,
             std::string& signature) {
    FlushTransients();
    std::vector<std::string> args = {"-c", File("ak.ctx"), "-l", pcrs, "-g", "sha256", "-m",
                                     File("quote.msg"), "-s", File("quote.sig")};
    if (!nonce_hex.empty()) args.insert(args.end(), {"-q", nonce_hex});
    Tool("quote", args);
    ASSERT_TRUE(ok()) << err();
    attest = ReadFile(File("quote.msg"));
    signature = ReadFile(File("quote.sig"));
  }

  // PcrValues returns the concatenated values of pcrs ("sha256:0,7"), ascending, as read now.
  std::string PcrValues(const std::string& pcrs) {
    Tool("pcrread", {pcrs, "-o", File("pcrs.bin")});
    EXPECT_TRUE(ok()) << err();
    return ReadFile(File("pcrs.bin"));
  }

  // PcrExtend extends sha256 PCR pcr with a measurement, as a changed boot component would.
  void PcrExtend(int pcr) {
    Tool("pcrextend", {std::to_string(pcr) + ":sha256=" + std::string(64, 'b')});
    EXPECT_TRUE(ok()) << err();
  }

  // FlushTransients frees the TPM's object and session slots: with no resource manager between
  // the tools and swtpm, objects the tools load stay loaded (swtpm has three slots).
  void FlushTransients() {
    Tool("flushcontext", {"-t"});
    Tool("flushcontext", {"-s"});
  }

  // Hmac signs data with the loaded identity key inside the TPM (TPM2_HMAC, SHA-256).
  std::vector<uint8_t> Hmac(std::string_view data) {
    WriteFile(File("msg.bin"), data);
    FlushTransients();
    Tool("hmac", {"-c", File("id.ctx"), "-g", "sha256", "-o", File("hmac.bin"), File("msg.bin")});
    std::string mac = ReadFile(File("hmac.bin"));
    return std::vector<uint8_t>(mac.begin(), mac.end());
  }

 private:
  explicit Swtpm(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  int last_exit_ = -1;
  std::string last_err_;
};

}  // namespace devid::testing
