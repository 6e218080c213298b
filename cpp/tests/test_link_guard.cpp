// Server-side CURVE on the LCC's sockets: key files, the allow-list and the ZAP handler, with
// real sockets on 127.0.0.1 (clients in their own context, as a detector process would be).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "laserguard/link/curve_keys.hpp"
#include "laserguard/link/lcc_link.hpp"
#include "laserguard/link/link_guard.hpp"

using namespace laserguard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

CurveKeyPair new_pair() {
  char pub[41] = {}, sec[41] = {};
  REQUIRE(zmq_curve_keypair(pub, sec) == 0);
  return {pub, sec};
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lg-guard-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_file(const fs::path& path, const std::string& text, unsigned mode) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string certificate(const CurveKeyPair& pair, bool with_secret) {
  std::string text = "#   ZeroMQ CURVE Certificate\nmetadata\ncurve\n    public-key = \"" + pair.public_z85 + "\"\n";
  if (with_secret) text += "    secret-key = \"" + pair.secret_z85 + "\"\n";
  return text;
}

// A client socket of another process: CURVE client with its own key pair, or plain.
ZmqSocket client(ZmqContext& ctx, int type, const std::string& server_public, const CurveKeyPair* keys) {
  ZmqSocket s(ctx, type);
  if (keys != nullptr) {
    s.set_bytes(ZMQ_CURVE_SERVERKEY, server_public.c_str(), 40, "ZMQ_CURVE_SERVERKEY");
    s.set_bytes(ZMQ_CURVE_PUBLICKEY, keys->public_z85.c_str(), 40, "ZMQ_CURVE_PUBLICKEY");
    s.set_bytes(ZMQ_CURVE_SECRETKEY, keys->secret_z85.c_str(), 40, "ZMQ_CURVE_SECRETKEY");
  }
  return s;
}

Feedback one_unit_feedback(std::uint32_t lcc, std::uint64_t seq) {
  Feedback f;
  f.lcc_id = lcc;
  f.seq = seq;
  f.n_features = 11;
  f.n_units = 1;
  f.top_k = 0;
  f.anomalous_units = {0};
  f.scores = {-0.3F};
  return f;
}

// Sends feedback from `pub` for up to `for_how_long`, polling the LCC's subscriber; true once
// one message arrived.
bool feedback_arrives(ZmqSocket& pub, FeedbackSubscriber& sub, std::chrono::milliseconds for_how_long) {
  const auto payload = encode_feedback(one_unit_feedback(3, 1));
  const std::string topic = "lcc.3.anomaly";
  const auto until = std::chrono::steady_clock::now() + for_how_long;
  while (std::chrono::steady_clock::now() < until) {
    zmq_send(pub.handle(), topic.data(), topic.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(pub.handle(), payload.data(), payload.size(), ZMQ_DONTWAIT);
    if (sub.poll(20ms)) return true;
  }
  return false;
}

struct Fixture {
  CurveKeyPair lcc = new_pair(), commander = new_pair(), reader = new_pair(), stranger = new_pair();
  std::vector<std::string> log;
  ZmqContext lcc_ctx, client_ctx;
  std::shared_ptr<LinkGuard> guard;
  Fixture() {
    AllowList allow;
    allow.add(commander.public_z85, ClientRole::kCommand, "detector");
    allow.add(reader.public_z85, ClientRole::kRead, "dashboard");
    guard = std::make_shared<LinkGuard>(lcc_ctx, lcc, allow, [this](const std::string& l) { log.push_back(l); });
  }
};

}  // namespace

TEST_CASE("secret key files: loose permissions refused naming file and mode; public key derived") {
  TempDir dir;
  const CurveKeyPair pair = new_pair();
  const fs::path secret = dir.path / "lcc.key_secret";
  write_file(secret, certificate(pair, true), 0644);
  CHECK_THROWS_WITH_AS(read_secret_key_file(secret.string()),
                       doctest::Contains(("'" + secret.string() + "' has mode 0644").c_str()), LinkError);
  REQUIRE(::chmod(secret.c_str(), 0600) == 0);
  const CurveKeyPair back = read_secret_key_file(secret.string());
  CHECK(back.public_z85 == pair.public_z85);
  CHECK(back.secret_z85 == pair.secret_z85);
  // A bare Z85 secret (what zmq_curve_keypair prints) is read too.
  const fs::path bare = dir.path / "bare.key_secret";
  write_file(bare, pair.secret_z85 + "\n", 0600);
  CHECK(read_secret_key_file(bare.string()).public_z85 == pair.public_z85);
  // A public-key line that does not belong to the secret key is refused.
  write_file(dir.path / "mixed.key_secret", certificate({new_pair().public_z85, pair.secret_z85}, true), 0600);
  CHECK_THROWS_WITH_AS(read_secret_key_file((dir.path / "mixed.key_secret").string()),
                       doctest::Contains("does not belong"), LinkError);
  write_file(dir.path / "junk.key", "public-key = \"not a key\"\n", 0644);
  CHECK_THROWS_WITH_AS(read_public_key_file((dir.path / "junk.key").string()), doctest::Contains("'not a key'"),
                       LinkError);
}

TEST_CASE("allow-list directory: command/ and read/ folders; a key in both is an error") {
  TempDir dir;
  const CurveKeyPair a = new_pair(), b = new_pair();
  CHECK_THROWS_WITH_AS(AllowList::from_directory(dir.path.string()), doctest::Contains("has no client keys"),
                       LinkError);
  write_file(dir.path / "command" / "detector.key", certificate(a, false), 0644);
  write_file(dir.path / "read" / "store.key", certificate(b, false), 0644);
  write_file(dir.path / "read" / "notes.txt", "not a key file, ignored", 0644);
  const AllowList list = AllowList::from_directory(dir.path.string());
  CHECK(list.size() == 2);
  CHECK(list.count(ClientRole::kCommand) == 1);
  const auto* entry = list.find(decode_z85_key(b.public_z85, "b"));
  REQUIRE(entry != nullptr);
  CHECK(entry->role == ClientRole::kRead);
  CHECK(entry->name == "store");
  write_file(dir.path / "read" / "detector.key", certificate(a, false), 0644);
  CHECK_THROWS_WITH_AS(AllowList::from_directory(dir.path.string()), doctest::Contains("a key has one role"),
                       LinkError);
}

TEST_CASE("feedback socket: only a command key gets frames through; others are refused and counted") {
  Fixture f;
  FeedbackSubscriber sub(f.lcc_ctx, "tcp://127.0.0.1:*", 100, {3}, f.guard);

  SUBCASE("command key") {
    ZmqSocket pub = client(f.client_ctx, ZMQ_PUB, f.lcc.public_z85, &f.commander);
    pub.connect(sub.endpoint());
    CHECK(feedback_arrives(pub, sub, 5000ms));
    CHECK(f.guard->accepted().at("feedback").at("command") == 1);
    CHECK(f.guard->refused_total() == 0);
  }
  SUBCASE("read key") {
    ZmqSocket pub = client(f.client_ctx, ZMQ_PUB, f.lcc.public_z85, &f.reader);
    pub.connect(sub.endpoint());
    CHECK_FALSE(feedback_arrives(pub, sub, 1000ms));
    CHECK(sub.received() == 0);
    CHECK(f.guard->refused().at("feedback").at("read_role") >= 1);
    REQUIRE(f.log.size() == 1);  // once per peer, however often it reconnects
    CHECK(f.log[0].find("'dashboard'") != std::string::npos);
    CHECK(f.log[0].find("read role") != std::string::npos);
  }
  SUBCASE("unknown key") {
    ZmqSocket pub = client(f.client_ctx, ZMQ_PUB, f.lcc.public_z85, &f.stranger);
    pub.connect(sub.endpoint());
    CHECK_FALSE(feedback_arrives(pub, sub, 1000ms));
    CHECK(f.guard->refused().at("feedback").at("unknown_key") >= 1);
    REQUIRE(f.log.size() == 1);
    CHECK(f.log[0].find(f.stranger.public_z85) != std::string::npos);
  }
  SUBCASE("plain ZeroMQ client") {
    ZmqSocket pub = client(f.client_ctx, ZMQ_PUB, "", nullptr);
    pub.connect(sub.endpoint());
    CHECK_FALSE(feedback_arrives(pub, sub, 1000ms));
    // Which side notices the mismatch first is a race: the LCC sees either the plain greeting
    // (no_curve) or a client that hung up mid-handshake (handshake_failed).
    const auto& reasons = f.guard->refused().at("feedback");
    CHECK(reasons.count("no_curve") + reasons.count("handshake_failed") >= 1);
    CHECK(f.guard->refused_total() >= 1);
  }
  SUBCASE("command key, wrong server key") {
    ZmqSocket pub = client(f.client_ctx, ZMQ_PUB, new_pair().public_z85, &f.commander);
    pub.connect(sub.endpoint());
    CHECK_FALSE(feedback_arrives(pub, sub, 1000ms));
    CHECK(f.guard->refused().at("feedback").at("bad_handshake") >= 1);
  }
}

TEST_CASE("telemetry socket: read and command keys subscribe, an unknown key never does") {
  Fixture f;
  TelemetryPublisher pub(f.lcc_ctx, "tcp://127.0.0.1:*", 100, random_boot_id(), f.guard);
  ZmqSocket stranger = client(f.client_ctx, ZMQ_SUB, f.lcc.public_z85, &f.stranger);
  stranger.set_bytes(ZMQ_SUBSCRIBE, "lcc.", 4, "ZMQ_SUBSCRIBE");
  stranger.connect(pub.endpoint());
  CHECK_FALSE(pub.wait_for_subscriber(1s));
  CHECK(f.guard->refused().at("telemetry").at("unknown_key") >= 1);

  ZmqSocket reader = client(f.client_ctx, ZMQ_SUB, f.lcc.public_z85, &f.reader);
  reader.set_bytes(ZMQ_SUBSCRIBE, "lcc.", 4, "ZMQ_SUBSCRIBE");
  reader.connect(pub.endpoint());
  CHECK(pub.wait_for_subscriber(5s, 1));
  ZmqSocket commander = client(f.client_ctx, ZMQ_SUB, f.lcc.public_z85, &f.commander);
  commander.set_bytes(ZMQ_SUBSCRIBE, "lcc.", 4, "ZMQ_SUBSCRIBE");
  commander.connect(pub.endpoint());
  CHECK(pub.wait_for_subscriber(5s, 2));
  CHECK(pub.subscriptions() == 2);
  CHECK(f.guard->accepted().at("telemetry").at("read") == 1);
  CHECK(f.guard->accepted().at("telemetry").at("command") == 1);
}

TEST_CASE("one guard per context: a second ZAP handler is a clear error") {
  Fixture f;
  CHECK_THROWS_WITH_AS(LinkGuard(f.lcc_ctx, f.lcc, AllowList{}), doctest::Contains("zeromq.zap.01"), LinkError);
}
