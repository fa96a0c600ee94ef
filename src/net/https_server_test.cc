#include "net/https_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "ca/testing/mini_ca.h"
#include "ca/tls_identity.h"
#include "pki/certificate.h"
#include "sdk/https_client.h"

namespace devid::net {
namespace {

using sdk::ClientTlsOptions;
using sdk::HttpsClient;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using SteadyClock = std::chrono::steady_clock;

// FunctionHandler answers with test-supplied functions and counts the calls to Handle.
class FunctionHandler final : public api::Handler {
 public:
  using TryNow = std::function<std::optional<api::Response>(const api::Request&)>;
  FunctionHandler(std::function<api::Response(const api::Request&)> handle, TryNow try_now)
      : handle_(std::move(handle)), try_now_(std::move(try_now)) {}
  api::Response Handle(const api::Request& request) override {
    ++calls_;
    return handle_(request);
  }
  std::optional<api::Response> TryHandleNow(const api::Request& request) override {
    return try_now_(request);
  }
  int calls() const { return calls_; }

 private:
  std::function<api::Response(const api::Request&)> handle_;
  TryNow try_now_;
  std::atomic<int> calls_{0};
};

api::Response Text(int status, std::string body) {
  api::Response response;
  response.status = status;
  response.SetHeader("Content-Type", "text/plain");
  response.body = std::move(body);
  return response;
}


// RawConnection is a blocking socket, optionally with TLS, for sending what HttpsClient never
// would: nothing at all, half a request, or garbage. Reads give up after five seconds.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RawConnection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ::close(fd_);
  }

  bool connected() const { return connected_; }

  // StartTls performs a TLS handshake trusting root.
  bool StartTls(X509* root) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), root);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }

  void Send(std::string_view data) {
    if (ssl_ != nullptr) {
      SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    } else {
      (void)::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    }
  }

  // ReadUntil reads until out holds marker (returns true) or the connection ends or a read times
  // out (returns false).
  bool ReadUntil(std::string_view marker, std::string* out) {
    char buffer[4096];
    while (out->find(marker) == std::string::npos) {
      int n = ssl_ != nullptr ? SSL_read(ssl_, buffer, sizeof(buffer))
                              : static_cast<int>(::recv(fd_, buffer, sizeof(buffer), 0));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      out->append(buffer, static_cast<size_t>(n));
    }
    return true;
  }

  // ReadUntilClosed reads until the server closes the connection (returns true) or a read times
  // out (returns false); what was read is appended to out.
  bool ReadUntilClosed(std::string* out) {
    char buffer[4096];
    for (;;) {
      errno = 0;
      int n = ssl_ != nullptr ? SSL_read(ssl_, buffer, sizeof(buffer))
                              : static_cast<int>(::recv(fd_, buffer, sizeof(buffer), 0));
      if (n > 0) {
        out->append(buffer, static_cast<size_t>(n));
        continue;
      }
      bool timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
      if (ssl_ != nullptr && SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) timed_out = false;
      ERR_clear_error();
      return !timed_out;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

class HttpsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static SystemClock clock;
    static SecureRandom random;
    auto pki = ca::testing::MakeTestCa(clock, random);
    ASSERT_TRUE(pki) << pki.error().message();
    pki_ = std::move(*pki);
    auto other = ca::testing::MakeTestCa(clock, random);
    ASSERT_TRUE(other) << other.error().message();
    other_pki_ = std::move(*other);
    auto identity = ca::IssueTlsIdentity(
        *pki_, ca::kServerProfile,
        {.common_name = "localhost", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
    ASSERT_TRUE(identity) << identity.error().message();
    server_identity_ = std::move(identity->identity);
  }
  static void TearDownTestSuite() {
    pki_.reset();
    other_pki_.reset();
  }

  static ServerOptions TestOptions() {
    ServerOptions options;
    options.io_threads = 2;
    options.handler_threads = 4;
    options.limits.handshake_timeout = seconds(5);
    options.limits.request_timeout = seconds(5);
    options.limits.idle_timeout = seconds(5);
    return options;
  }

  void StartServer(const ServerOptions& options = TestOptions()) {
    auto server = HttpsServer::Start(options, server_identity_, handler_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  void StartPlainServer() {
    auto server = HttpsServer::StartPlain(TestOptions(), handler_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  ClientTlsOptions ClientOptions() const {
    ClientTlsOptions options;
    options.trust_bundle_pem = pki_->TrustBundlePem();
    options.timeout = seconds(10);
    return options;
  }

  Result<HttpsClient> Connect(ClientTlsOptions options) {
    return HttpsClient::Connect("127.0.0.1", server_->port(), std::move(options));
  }
  HttpsClient Connect() {
    auto client = Connect(ClientOptions());
    EXPECT_TRUE(client) << client.error().message();
    return std::move(*client);
  }

  // Client identities for the client-certificate tests: leaf and key PEM.
  static ca::TlsIdentity Client(ca::Authority& authority, std::string common_name) {
    auto issued = ca::IssueTlsIdentity(authority, ca::kDeviceClientProfile,
                                       {.common_name = std::move(common_name)});
    EXPECT_TRUE(issued) << issued.error().message();
    return issued ? issued->identity : ca::TlsIdentity{};
  }

  static inline std::unique_ptr<ca::Authority> pki_;
  static inline std::unique_ptr<ca::Authority> other_pki_;
  static inline ca::TlsIdentity server_identity_;

  std::function<api::Response(const api::Request&)> handle_ = [](const api::Request& request) {
    api::Response response = Text(200, request.body);
    response.SetHeader("X-Method", request.method);
    response.SetHeader("X-Target", request.target);
    response.SetHeader("X-Test", std::string(request.HeaderValue("x-test")));
    response.SetHeader("X-Remote", request.remote_address);
    return response;
  };
  FunctionHandler::TryNow try_now_ = [](const api::Request&) { return std::nullopt; };
  FunctionHandler handler_{[this](const api::Request& request) { return handle_(request); },
                           [this](const api::Request& request) { return try_now_(request); }};
  std::unique_ptr<HttpsServer> server_;
};

TEST_F(HttpsServerTest, RoundTrip_ConvertsRequestAndResponse) {
  handle_ = [](const api::Request& request) {
    api::Response response = Text(201, "got " + request.body);
    response.SetHeader("X-Method", request.method);
    response.SetHeader("X-Target", request.target);
    // Header names arrive lowercase whatever the client wrote.
    bool lowercase = true;
    for (const auto& [name, value] : request.headers) {
      for (char c : name) lowercase = lowercase && !(c >= 'A' && c <= 'Z');
    }
    response.SetHeader("X-Lowercase", lowercase ? "yes" : "no");
    response.SetHeader("X-Test", std::string(request.HeaderValue("x-test")));
    response.SetHeader("X-Remote", request.remote_address);
    response.SetHeader("X-Peer-Certificates", std::to_string(request.peer_certificates_der.size()));
    return response;
  };
  StartServer();
  HttpsClient client = Connect();
  auto response = client.Send("PUT", "/scope/registrations/dev1/register?api-version=2021-06-01",
                              {{"X-Test", "hello"}, {"Content-Type", "application/json"}},
                              R"({"registrationId":"dev1"})");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"(got {"registrationId":"dev1"})");
  EXPECT_EQ(response->HeaderValue("x-method"), "PUT");
  EXPECT_EQ(response->HeaderValue("x-target"),
            "/scope/registrations/dev1/register?api-version=2021-06-01");
  EXPECT_EQ(response->HeaderValue("x-lowercase"), "yes");
  EXPECT_EQ(response->HeaderValue("x-test"), "hello");
  EXPECT_EQ(response->HeaderValue("x-remote"), "127.0.0.1");
  EXPECT_EQ(response->HeaderValue("x-peer-certificates"), "0");
  EXPECT_EQ(response->HeaderValue("content-length"), std::to_string(response->body.size()));
  EXPECT_EQ(response->HeaderValue("content-type"), "text/plain");
}

TEST_F(HttpsServerTest, KeepAlive_ServesManyRequestsOnOneConnection) {
  StartServer();
  HttpsClient client = Connect();
  for (int i = 0; i < 200; ++i) {
    std::string body = "request " + std::to_string(i);
    auto response = client.Send("POST", "/echo", {}, body);
    ASSERT_TRUE(response) << response.error().message();
    ASSERT_EQ(response->status, 200);
    ASSERT_EQ(response->body, body);
  }
  EXPECT_EQ(client.connections(), 1);
  EXPECT_EQ(handler_.calls(), 200);
}

TEST_F(HttpsServerTest, Accepts_GetWithBody) {
  // The Azure IoT SDKs send their operation-status GET with Content-Length: 2 and "{}".
  handle_ = [](const api::Request& request) {
    return Text(200, std::string(request.HeaderValue("content-length")) + "|" + request.body);
  };
  StartServer();
  HttpsClient client = Connect();
  auto response = client.Send("GET", "/scope/registrations/dev1/operations/1", {}, "{}");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "2|{}");
}

TEST_F(HttpsServerTest, Head_SendsLengthWithoutBody) {
  handle_ = [](const api::Request&) { return Text(200, "twelve bytes"); };
  StartServer();
  HttpsClient client = Connect();
  auto head = client.Send("HEAD", "/x");
  ASSERT_TRUE(head) << head.error().message();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->HeaderValue("content-length"), "12");
  EXPECT_EQ(head->body, "");
  // The connection is still in step: the next response is read whole.
  auto get = client.Send("GET", "/x");
  ASSERT_TRUE(get) << get.error().message();
  EXPECT_EQ(get->body, "twelve bytes");
  EXPECT_EQ(client.connections(), 1);
}

TEST_F(HttpsServerTest, StartPlain_ServesHttpWithoutTls_ThenClosesWhenAsked) {
  ASSERT_NO_FATAL_FAILURE(StartPlainServer());
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  raw.Send("POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  std::string first;
  ASSERT_TRUE(raw.ReadUntil("\r\n\r\nhi", &first)) << first;
  EXPECT_THAT(first, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(first, HasSubstr("X-Target: /ocsp"));
  // Kept alive, and the last request's "Connection: close" ends it with a FIN.
  raw.Send("GET /crl/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string second;
  ASSERT_TRUE(raw.ReadUntilClosed(&second)) << second;
  EXPECT_THAT(second, HasSubstr("X-Target: /crl/x"));
  EXPECT_THAT(second, HasSubstr("Connection: close"));
}

// The server frames responses itself: Content-Length (none for 304), Connection as the version
// needs it, and no handler header that is invalid or would frame the message.
TEST_F(HttpsServerTest, Frames_ResponsesWhateverTheHandlerSets) {
  handle_ = [](const api::Request& request) {
    api::Response response = Text(request.target == "/unchanged" ? 304 : 200, "body");
    response.SetHeader("ETag", "\"e\"");
    response.SetHeader("X-Split", "a\r\nSet-Cookie: b");
    response.SetHeader("Bad Name", "c");
    response.SetHeader("Content-Length", "999");
    response.SetHeader("Connection", "upgrade");
    return response;
  };
  ASSERT_NO_FATAL_FAILURE(StartPlainServer());
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  raw.Send("GET /unchanged HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string unchanged;
  ASSERT_TRUE(raw.ReadUntil("\r\n\r\n", &unchanged)) << unchanged;
  EXPECT_THAT(unchanged, HasSubstr("HTTP/1.1 304 Not Modified\r\n"));
  EXPECT_THAT(unchanged, HasSubstr("ETag: \"e\"\r\n"));
  EXPECT_THAT(unchanged, Not(HasSubstr("Content-Length")));
  EXPECT_THAT(unchanged, Not(HasSubstr("Set-Cookie")));
  EXPECT_THAT(unchanged, Not(HasSubstr("Bad Name")));
  EXPECT_THAT(unchanged, Not(HasSubstr("Connection")));
  // No body followed: the next response starts right after the header block.
  raw.Send("GET /next HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  std::string next;
  ASSERT_TRUE(raw.ReadUntil("body", &next)) << next;
  EXPECT_EQ(next.find("HTTP/1.0 200 OK\r\n"), 0u) << next;
  EXPECT_THAT(next, HasSubstr("Content-Length: 4\r\n"));
  EXPECT_THAT(next, HasSubstr("Connection: keep-alive\r\n"));
  EXPECT_THAT(next, Not(HasSubstr("999")));
}

TEST_F(HttpsServerTest, StartPlain_DoesNotSpeakTls) {
  ASSERT_NO_FATAL_FAILURE(StartPlainServer());
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  EXPECT_FALSE(raw.StartTls(pki_->roots().front().get()));
}

TEST_F(HttpsServerTest, Start_RejectsZeroTimeout) {
  ServerOptions options = TestOptions();
  options.limits.idle_timeout = seconds(0);
  auto server = HttpsServer::Start(options, server_identity_, handler_);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(server.error().message(), HasSubstr("limits.idle_timeout"));
}

TEST_F(HttpsServerTest, Answers100Continue_WhenClientWaitsForIt) {
  StartServer();
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.StartTls(pki_->roots().front().get()));
  raw.Send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string received;
  ASSERT_TRUE(raw.ReadUntil("\r\n\r\n", &received));
  EXPECT_THAT(received, ::testing::StartsWith("HTTP/1.1 100 Continue\r\n"));
  received.clear();
  raw.Send("hello");
  ASSERT_TRUE(raw.ReadUntil("hello", &received));
  EXPECT_THAT(received, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpsServerTest, Rejects_OversizedBody_With413) {
  ServerOptions options = TestOptions();
  options.limits.body_limit = 1024;
  StartServer(options);
  HttpsClient client = Connect();
  auto at_limit = client.Send("POST", "/echo", {}, std::string(1024, 'a'));
  ASSERT_TRUE(at_limit) << at_limit.error().message();
  EXPECT_EQ(at_limit->status, 200);

  auto response = client.Send("POST", "/echo", {}, std::string(64 * 1024, 'a'));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->HeaderValue("connection"), "close");
  EXPECT_EQ(response->HeaderValue("x-ms-error-code"), "413001");
  auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["errorCode"], 413001);
  EXPECT_THAT(body["message"].get<std::string>(), HasSubstr("1024-byte limit"));
  EXPECT_FALSE(body["trackingId"].get<std::string>().empty());
  EXPECT_EQ(handler_.calls(), 1);
}

TEST_F(HttpsServerTest, Rejects_OversizedHeader_With431) {
  ServerOptions options = TestOptions();
  options.limits.header_limit = 1024;
  StartServer(options);
  HttpsClient client = Connect();
  auto response = client.Send("GET", "/x", {{"X-Big", std::string(2000, 'b')}});
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(nlohmann::json::parse(response->body)["errorCode"], 431001);
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpsServerTest, Rejects_MalformedRequest_With400) {
  StartServer();
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.StartTls(pki_->roots().front().get()));
  raw.Send("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n");
  std::string received;
  ASSERT_TRUE(raw.ReadUntil("400001", &received)) << received;
  EXPECT_THAT(received, ::testing::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(received, HasSubstr("malformed HTTP request"));
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpsServerTest, HandlerException_Becomes500_AndConnectionSurvives) {
  handle_ = [](const api::Request&) -> api::Response { throw std::runtime_error("secret detail"); };
  StartServer();
  HttpsClient client = Connect();
  for (int i = 0; i < 2; ++i) {
    auto response = client.Send("POST", "/x", {}, "{}");
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 500);
    auto body = nlohmann::json::parse(response->body);
    EXPECT_EQ(body["errorCode"], 500000);
    EXPECT_FALSE(body["trackingId"].get<std::string>().empty());
    EXPECT_THAT(response->body, ::testing::Not(HasSubstr("secret detail")));
  }
  EXPECT_EQ(client.connections(), 1);
}

TEST_F(HttpsServerTest, TryHandleNow_AnswersOnTheIoThread_AndLeavesTheRestToHandle) {
  std::mutex mu;
  std::thread::id now_thread;
  std::thread::id handle_thread;
  try_now_ = [&](const api::Request& request) -> std::optional<api::Response> {
    std::lock_guard lock(mu);
    now_thread = std::this_thread::get_id();
    if (request.target != "/now") return std::nullopt;
    return Text(200, "now " + request.body);
  };
  handle_ = [&](const api::Request& request) {
    std::lock_guard lock(mu);
    handle_thread = std::this_thread::get_id();
    return Text(200, "later " + request.body);
  };
  StartServer();
  HttpsClient client = Connect();
  for (int i = 0; i < 3; ++i) {
    auto now = client.Send("POST", "/now", {}, "a");
    ASSERT_TRUE(now) << now.error().message();
    EXPECT_EQ(now->status, 200);
    EXPECT_EQ(now->body, "now a");
    EXPECT_EQ(now->HeaderValue("content-length"), "5");
    auto later = client.Send("POST", "/later", {}, "b");
    ASSERT_TRUE(later) << later.error().message();
    EXPECT_EQ(later->body, "later b");
  }
  EXPECT_EQ(handler_.calls(), 3);
  EXPECT_EQ(client.connections(), 1);
  std::lock_guard lock(mu);
  EXPECT_NE(now_thread, handle_thread) << "Handle runs on a handler thread, not the I/O thread";
}

TEST_F(HttpsServerTest, TryHandleNowException_LeavesTheRequestToHandle) {
  try_now_ = [](const api::Request&) -> std::optional<api::Response> {
    throw std::runtime_error("no fast answer");
  };
  handle_ = [](const api::Request& request) { return Text(200, "handled " + request.body); };
  StartServer();
  HttpsClient client = Connect();
  auto response = client.Send("POST", "/x", {}, "c");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "handled c");
  EXPECT_EQ(handler_.calls(), 1);
}

TEST_F(HttpsServerTest, Disconnects_ClientThatNeverHandshakes) {
  ServerOptions options = TestOptions();
  options.limits.handshake_timeout = seconds(1);
  StartServer(options);
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  auto start = SteadyClock::now();
  std::string received;
  EXPECT_TRUE(raw.ReadUntilClosed(&received));
  auto elapsed = SteadyClock::now() - start;
  EXPECT_TRUE(received.empty());
  EXPECT_GE(elapsed, milliseconds(900));
  EXPECT_LT(elapsed, seconds(4));
}

TEST_F(HttpsServerTest, Disconnects_ClientThatSendsHalfARequest) {
  ServerOptions options = TestOptions();
  options.limits.request_timeout = seconds(1);
  StartServer(options);
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.StartTls(pki_->roots().front().get()));
  auto start = SteadyClock::now();
  raw.Send("GET /x HTTP/1.1\r\nHost: x\r\n");
  std::string received;
  EXPECT_TRUE(raw.ReadUntilClosed(&received));
  auto elapsed = SteadyClock::now() - start;
  EXPECT_TRUE(received.empty()) << received;
  EXPECT_GE(elapsed, milliseconds(900));
  EXPECT_LT(elapsed, seconds(4));
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpsServerTest, ClosesIdleConnection_AndClientReconnects) {
  ServerOptions options = TestOptions();
  options.limits.idle_timeout = seconds(1);
  StartServer(options);
  HttpsClient client = Connect();
  ASSERT_TRUE(client.Send("GET", "/a"));
  std::this_thread::sleep_for(milliseconds(1500));  // Past the idle timeout, a real timer.
  auto response = client.Send("GET", "/b");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(client.connections(), 2);
}

TEST_F(HttpsServerTest, RefusesConnectionsBeyondTheLimit) {
  ServerOptions options = TestOptions();
  options.limits.max_connections = 1;
  StartServer(options);
  std::optional<HttpsClient> first = Connect();
  ASSERT_TRUE(first->Send("GET", "/a"));
  auto second = Connect(ClientOptions());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(first->Send("GET", "/a"));

  first.reset();
  // The server notices the close asynchronously.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    auto third = Connect(ClientOptions());
    served = third && third->Send("GET", "/c").has_value();
    if (!served) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpsServerTest, Shutdown_FinishesInFlightRequest_AndRefusesNewConnections) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  handle_ = [&](const api::Request& request) {
    if (request.target == "/slow") {
      entered.set_value();
      released.wait();
      return Text(200, "slow done");
    }
    return Text(200, "fast");
  };
  StartServer();
  HttpsClient idle = Connect();
  ASSERT_TRUE(idle.Send("GET", "/fast"));
  HttpsClient busy = Connect();
  auto slow = std::async(std::launch::async, [&busy] { return busy.Send("POST", "/slow"); });
  entered.get_future().wait();

  auto start = SteadyClock::now();
  std::atomic<bool> shut_down{false};
  std::thread shutdown([&] {
    server_->Shutdown(seconds(10));
    shut_down = true;
  });
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    RawConnection probe(server_->port());
    refused = !probe.connected();
    if (!refused) std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(shut_down);

  release.set_value();
  auto response = slow.get();
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "slow done");
  EXPECT_EQ(response->HeaderValue("connection"), "close");
  shutdown.join();
  EXPECT_TRUE(shut_down);
  // Well within the grace period: the idle connection did not hold Shutdown up.
  EXPECT_LT(SteadyClock::now() - start, seconds(5));

  auto after = idle.Send("GET", "/fast");
  ASSERT_FALSE(after);
  EXPECT_THAT(after.error().message(), HasSubstr("connecting to https://127.0.0.1:"));
}

TEST_F(HttpsServerTest, Shutdown_ForceClosesAfterGrace_ThenWaitsForHandler) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  handle_ = [&](const api::Request&) {
    entered.set_value();
    released.wait();
    return Text(200, "too late");
  };
  StartServer();
  HttpsClient busy = Connect();
  auto slow = std::async(std::launch::async, [&busy] { return busy.Send("POST", "/slow"); });
  entered.get_future().wait();
  std::atomic<bool> shut_down{false};
  std::thread shutdown([&] {
    server_->Shutdown(seconds(0));
    shut_down = true;
  });
  auto response = slow.get();
  EXPECT_FALSE(response);
  EXPECT_FALSE(shut_down);  // The handler is still running.
  release.set_value();
  shutdown.join();
  EXPECT_TRUE(shut_down);
}

TEST_F(HttpsServerTest, ClientCertificateChain_ReachesHandler) {
  std::mutex mu;
  std::vector<std::string> seen;
  handle_ = [&](const api::Request& request) {
    std::lock_guard lock(mu);
    seen = request.peer_certificates_der;
    return Text(200, "ok");
  };
  ServerOptions options = TestOptions();
  options.request_client_certificate = true;
  StartServer(options);

  auto identity = std::optional(Client(*pki_, "device-1"));
  ASSERT_TRUE(identity);
  ClientTlsOptions tls = ClientOptions();
  tls.certificate_chain_pem = identity->certificate_chain_pem;  // leaf, issuing CA
  tls.private_key_pem = identity->private_key_pem;
  auto client = Connect(tls);
  ASSERT_TRUE(client) << client.error().message();
  ASSERT_TRUE(client->Send("GET", "/whoami"));
  auto leaf = pki::Certificate::FromPem(identity->certificate_chain_pem);
  ASSERT_TRUE(leaf);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], leaf->ToDer());
    EXPECT_EQ(seen[1], pki_->issuers().front().certificate.ToDer());
  }

  // TLS accepts a certificate from any issuer: judging it is the handler's job.
  auto stranger = std::optional(Client(*other_pki_, "stranger"));
  ASSERT_TRUE(stranger);
  tls.certificate_chain_pem = stranger->certificate_chain_pem;
  tls.private_key_pem = stranger->private_key_pem;
  auto stranger_client = Connect(tls);
  ASSERT_TRUE(stranger_client) << stranger_client.error().message();
  ASSERT_TRUE(stranger_client->Send("GET", "/whoami"));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], pki::Certificate::FromPem(stranger->certificate_chain_pem)->ToDer());
  }

  // A client without a certificate is served too, with no chain.
  HttpsClient anonymous = Connect();
  ASSERT_TRUE(anonymous.Send("GET", "/whoami"));
  std::lock_guard lock(mu);
  EXPECT_TRUE(seen.empty());
}

TEST_F(HttpsServerTest, Start_FailsOnPortInUse) {
  StartServer();
  ServerOptions options = TestOptions();
  options.port = server_->port();
  auto second = HttpsServer::Start(options, server_identity_, handler_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(second.error().message(),
              HasSubstr("listening on 127.0.0.1:" + std::to_string(server_->port())));
}

TEST_F(HttpsServerTest, Start_FailsOnBadTlsIdentity) {
  ca::TlsIdentity mismatched = server_identity_;
  mismatched.private_key_pem = Client(*pki_, "x").private_key_pem;
  auto server = HttpsServer::Start(TestOptions(), mismatched, handler_);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(server.error().message(), HasSubstr("loading the server TLS identity"));

  auto garbage = HttpsServer::Start(TestOptions(), {"not pem", "not pem"}, handler_);
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(HttpsServerTest, Client_RejectsServerOutsideTrustBundle) {
  StartServer();
  ClientTlsOptions tls = ClientOptions();
  tls.trust_bundle_pem = other_pki_->TrustBundlePem();
  auto client = Connect(tls);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(client.error().message(),
              HasSubstr("connecting to https://127.0.0.1:" + std::to_string(server_->port()) +
                        ": server certificate rejected"));
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpsServerTest, Client_RejectsHostnameMismatch) {
  StartServer();
  ClientTlsOptions tls = ClientOptions();
  tls.server_name = "devid.example.com";
  auto client = Connect(tls);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(client.error().message(), HasSubstr("hostname mismatch"));

  tls.server_name = "127.0.0.2";
  client = Connect(tls);
  ASSERT_FALSE(client);
  EXPECT_THAT(client.error().message(), HasSubstr("IP address mismatch"));
}

TEST_F(HttpsServerTest, Client_AcceptsNameOrAddressInCertificate) {
  StartServer();
  ClientTlsOptions tls = ClientOptions();
  tls.server_name = "localhost";
  auto by_name = Connect(tls);
  ASSERT_TRUE(by_name) << by_name.error().message();
  EXPECT_TRUE(by_name->Send("GET", "/"));
  auto by_address = Connect(ClientOptions());  // server_name defaults to the host, an IP.
  ASSERT_TRUE(by_address) << by_address.error().message();
  ASSERT_FALSE(by_address->PeerCertificatesDer().empty());
  EXPECT_EQ(by_address->PeerCertificatesDer()[0],
            pki::Certificate::FromPem(server_identity_.certificate_chain_pem)->ToDer());
}

TEST_F(HttpsServerTest, Client_ReportsConnectionRefused) {
  StartServer();
  uint16_t port = server_->port();
  server_->Shutdown(seconds(0));
  auto client = HttpsClient::Connect("127.0.0.1", port, ClientOptions());
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(client.error().message(),
              HasSubstr("connecting to https://127.0.0.1:" + std::to_string(port) + ": "));
  EXPECT_THAT(client.error().message(), HasSubstr("onnection refused"));
}

TEST_F(HttpsServerTest, Client_RequiresTrustBundle) {
  auto client = HttpsClient::Connect("127.0.0.1", 1, ClientTlsOptions{});
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(client.error().message(), HasSubstr("trust bundle"));
}

}  // namespace
}  // namespace devid::net
