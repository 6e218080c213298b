#include "laserguard/link/link_guard.hpp"

#include <zmq.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace laserguard {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by RFC 27
constexpr const char* kTelemetryDomain = "laserguard.telemetry";
constexpr const char* kFeedbackDomain = "laserguard.feedback";
constexpr std::size_t kMaxLoggedPeers = 4096;

[[noreturn]] void fail_zmq(const std::string& what) { throw LinkError(what + ": " + zmq_strerror(zmq_errno())); }

// Receives every part of one message; false (nothing read) when none is queued.
bool receive_parts(void* socket, std::vector<std::string>& parts) {
  parts.clear();
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    // Only the first part may be absent: a multipart message is delivered whole.
    if (zmq_msg_recv(&msg, socket, parts.empty() ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close(&msg);
      if (parts.empty() && (zmq_errno() == EAGAIN || zmq_errno() == EINTR)) return false;
      fail_zmq("link guard: receiving failed");
    }
    parts.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    const bool more = zmq_msg_more(&msg) != 0;
    zmq_msg_close(&msg);
    if (!more) return true;
  }
}

void send_parts(void* socket, const std::vector<std::string>& parts) {
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const int flags = i + 1 < parts.size() ? ZMQ_SNDMORE : 0;
    if (zmq_send(socket, parts[i].data(), parts[i].size(), flags) < 0) fail_zmq("link guard: ZAP reply failed");
  }
}

bool has_input(void* socket) {
  int events = 0;
  std::size_t len = sizeof events;
  if (zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) != 0) fail_zmq("link guard: reading ZMQ_EVENTS failed");
  return (events & ZMQ_POLLIN) != 0;
}

const char* socket_of_domain(const std::string& domain) {
  if (domain == kTelemetryDomain) return "telemetry";
  if (domain == kFeedbackDomain) return "feedback";
  return nullptr;
}

}  // namespace

LinkGuard::LinkGuard(ZmqContext& context, CurveKeyPair server, AllowList allow, Logger log)
    : server_(std::move(server)), allow_(std::move(allow)), log_(std::move(log)), context_(context),
      zap_(context, ZMQ_REP) {
  if (zmq_has("curve") == 0) throw LinkError("this libzmq was built without CURVE (needs libsodium)");
  decode_z85_key(server_.secret_z85, "LCC secret key");
  if (!log_) log_ = [](const std::string& line) { std::fprintf(stderr, "lcc_link: %s\n", line.c_str()); };
  // Binding fails (EADDRINUSE) if another handler already owns this context's ZAP endpoint.
  zap_.bind(kZapEndpoint);
  sockets_.push_back(zap_.handle());
  int fd = -1;
  std::size_t len = sizeof fd;
  if (zmq_getsockopt(zap_.handle(), ZMQ_FD, &fd, &len) != 0) fail_zmq("reading ZMQ_FD failed");
  fds_.push_back(fd);
}

void LinkGuard::secure(ZmqSocket& socket, LinkSocketKind kind) {
  const bool telemetry = kind == LinkSocketKind::kTelemetry;
  socket.set_int(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER");
  socket.set_bytes(ZMQ_CURVE_SECRETKEY, server_.secret_z85.c_str(), 40, "ZMQ_CURVE_SECRETKEY");
  const char* domain = telemetry ? kTelemetryDomain : kFeedbackDomain;
  socket.set_bytes(ZMQ_ZAP_DOMAIN, domain, std::strlen(domain), "ZMQ_ZAP_DOMAIN");

  // Handshakes that fail before ZAP (no CURVE, wrong server key) only show as monitor events.
  const std::string endpoint = "inproc://laserguard.guard." + std::to_string(reinterpret_cast<std::uintptr_t>(this)) +
                               "." + std::to_string(monitors_.size());
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(),
                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
    fail_zmq("cannot monitor the " + std::string(telemetry ? "telemetry" : "feedback") + " socket");
  ZmqSocket monitor(context_, ZMQ_PAIR);
  monitor.connect(endpoint);
  int fd = -1;
  std::size_t len = sizeof fd;
  if (zmq_getsockopt(monitor.handle(), ZMQ_FD, &fd, &len) != 0) fail_zmq("reading ZMQ_FD failed");
  sockets_.push_back(monitor.handle());
  fds_.push_back(fd);
  monitors_.push_back(std::move(monitor));
  monitor_socket_.emplace_back(telemetry ? "telemetry" : "feedback");
}

void LinkGuard::serve() {
  // Drain every socket; ZMQ_FD is edge-triggered, so only stop once none reports input.
  for (;;) {
    bool any = false;
    while (serve_zap()) any = true;
    for (std::size_t i = 0; i < monitors_.size(); ++i)
      while (serve_monitor(i)) any = true;
    if (any) continue;
    bool pending = false;
    for (void* s : sockets_) pending = pending || has_input(s);
    if (!pending) return;
  }
}

bool LinkGuard::serve_zap() {
  std::vector<std::string> request;
  if (!receive_parts(zap_.handle(), request)) return false;
  // RFC 27 request: version, request id, domain, address, identity, mechanism, credentials...
  if (request.size() < 6) {
    // Not a ZAP request: a REP socket must still answer before it can read the next one.
    send_parts(zap_.handle(), {"1.0", "", "500", "malformed ZAP request", "", ""});
    return true;
  }
  const std::string& request_id = request[1];
  const std::string& domain = request[2];
  const std::string& address = request[3];
  const std::string& mechanism = request[5];
  const char* socket = socket_of_domain(domain);
  const auto answer = [&](bool ok, const std::string& text, const std::string& user_id) {
    send_parts(zap_.handle(), {"1.0", request_id, ok ? "200" : "400", text, user_id, ""});
  };
  if (socket == nullptr) {
    refuse("other", "unknown_domain", "domain:" + domain,
           "refused a connection from " + address + " to a socket with ZAP domain '" + domain +
               "' (not an lcc_link socket)");
    answer(false, "unknown domain", "");
    return true;
  }
  if (mechanism != "CURVE" || request.size() < 7 || request[6].size() != 32) {
    refuse(socket, "no_curve", std::string(socket) + ":" + mechanism,
           "refused a " + mechanism + " connection from " + address + " to the " + socket + " socket: CURVE required");
    answer(false, "CURVE required", "");
    return true;
  }
  CurveKey key{};
  std::memcpy(key.data(), request[6].data(), key.size());
  const std::string key_text = encode_z85_key(key);
  const AllowList::Entry* entry = allow_.find(key);
  const bool feedback = std::strcmp(socket, "feedback") == 0;
  if (entry == nullptr) {
    refuse(socket, "unknown_key", std::string(socket) + ":" + key_text,
           "refused " + std::string(socket) + " connection from " + address + ": key " + key_text +
               " is not on the allow-list");
    answer(false, "key not allowed", "");
  } else if (feedback && entry->role != ClientRole::kCommand) {
    refuse(socket, "read_role", std::string(socket) + ":" + key_text,
           "refused feedback connection from " + address + ": key '" + entry->name + "' (" + key_text +
               ") has the read role; sending feedback needs the command role");
    answer(false, "read role may not send feedback", "");
  } else {
    ++accepted_[socket][role_name(entry->role)];
    // User-Id (zmq_msg_gets) names the client on every message of the connection.
    answer(true, "OK", std::string(role_name(entry->role)) + ":" + entry->name);
  }
  return true;
}

bool LinkGuard::serve_monitor(std::size_t index) {
  std::vector<std::string> event;
  if (!receive_parts(monitors_[index].handle(), event)) return false;
  if (event.empty() || event[0].size() < 6) return true;
  std::uint16_t id = 0;
  std::uint32_t value = 0;
  std::memcpy(&id, event[0].data(), sizeof id);  // native byte order, per zmq_socket_monitor
  std::memcpy(&value, event[0].data() + 2, sizeof value);
  const std::string& socket = monitor_socket_[index];
  std::string reason = "handshake_failed";
  std::string why = "a handshake failed";
  if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
      reason = "no_curve";
      why = "a client without CURVE (plain ZeroMQ) tried to connect";
    } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
      reason = "bad_handshake";
      why = "a CURVE handshake failed to decrypt: the client most likely has the wrong server key";
    } else {
      reason = "protocol_error";
      why = "a handshake broke the protocol";
    }
  }
  refuse(socket, reason, socket + ":" + reason,
         why + " on the " + socket + " socket (refused; later ones are counted, not logged)");
  return true;
}

void LinkGuard::refuse(const std::string& socket, const std::string& reason, const std::string& peer,
                       const std::string& message) {
  ++refused_[socket][reason];
  // Bounded: a scan with random keys is counted, but cannot grow the set (or the log) without end.
  if (logged_.size() >= kMaxLoggedPeers || !logged_.insert(peer).second) return;
  log_(message);
  if (logged_.size() == kMaxLoggedPeers)
    log_(std::to_string(kMaxLoggedPeers) + " refused peers logged: further new ones are only counted");
}

std::uint64_t LinkGuard::refused_total() const {
  std::uint64_t total = 0;
  for (const auto& [socket, reasons] : refused_)
    for (const auto& [reason, n] : reasons) total += n;
  return total;
}

}  // namespace laserguard
