#include "laserguard/link/lcc_link.hpp"

#include "laserguard/link/link_guard.hpp"

#include <poll.h>
#include <zmq.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <random>
#include <ctime>

namespace laserguard {
namespace {

[[noreturn]] void fail_zmq(const std::string& what) {
  throw LinkError(what + ": " + zmq_strerror(zmq_errno()));
}

// A zmq_msg_t that is always closed.
class Message {
 public:
  Message() { zmq_msg_init(&msg_); }
  ~Message() { zmq_msg_close(&msg_); }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  zmq_msg_t* get() { return &msg_; }
  const std::uint8_t* data() { return static_cast<const std::uint8_t*>(zmq_msg_data(&msg_)); }
  std::size_t size() { return zmq_msg_size(&msg_); }
  bool more() { return zmq_msg_more(&msg_) != 0; }

 private:
  zmq_msg_t msg_;
};

}  // namespace

// --------------------------------------------------------------------------- context

ZmqContext::ZmqContext() : ctx_(zmq_ctx_new()) {
  if (ctx_ == nullptr) fail_zmq("zmq_ctx_new failed");
}

ZmqContext::~ZmqContext() { zmq_ctx_term(ctx_); }

// ---------------------------------------------------------------------------- socket

ZmqSocket::ZmqSocket(ZmqContext& context, int type) : socket_(zmq_socket(context.handle(), type)) {
  if (socket_ == nullptr) fail_zmq("zmq_socket failed");
  set_int(ZMQ_LINGER, 0, "ZMQ_LINGER");
}

ZmqSocket::~ZmqSocket() { close(); }

ZmqSocket::ZmqSocket(ZmqSocket&& other) noexcept : socket_(other.socket_) { other.socket_ = nullptr; }

ZmqSocket& ZmqSocket::operator=(ZmqSocket&& other) noexcept {
  if (this != &other) {
    close();
    socket_ = other.socket_;
    other.socket_ = nullptr;
  }
  return *this;
}

void ZmqSocket::close() noexcept {
  if (socket_ != nullptr) zmq_close(socket_);
  socket_ = nullptr;
}

void ZmqSocket::set_int(int option, int value, const char* name) {
  if (zmq_setsockopt(socket_, option, &value, sizeof value) != 0)
    fail_zmq(std::string("setting ") + name + " to " + std::to_string(value) + " failed");
}

void ZmqSocket::set_bytes(int option, const void* data, std::size_t size, const char* name) {
  if (zmq_setsockopt(socket_, option, data, size) != 0) fail_zmq(std::string("setting ") + name + " failed");
}

void ZmqSocket::bind(const std::string& endpoint) {
  if (zmq_bind(socket_, endpoint.c_str()) != 0) fail_zmq("cannot bind '" + endpoint + "'");
}

void ZmqSocket::connect(const std::string& endpoint) {
  if (zmq_connect(socket_, endpoint.c_str()) != 0) fail_zmq("cannot connect to '" + endpoint + "'");
}

std::string ZmqSocket::last_endpoint() const {
  char buf[256] = {};
  std::size_t len = sizeof buf;
  if (zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, buf, &len) != 0) fail_zmq("reading ZMQ_LAST_ENDPOINT failed");
  return std::string(buf);
}

// ------------------------------------------------------------------------- publisher

std::uint64_t random_boot_id() {
  std::random_device device;
  // random_device yields 32 bits per call on common implementations: draw two.
  const auto high = static_cast<std::uint64_t>(device()) & 0xFFFFFFFFULL;
  const auto low = static_cast<std::uint64_t>(device()) & 0xFFFFFFFFULL;
  return (high << 32) | low;
}

TelemetryPublisher::TelemetryPublisher(ZmqContext& context, const std::string& endpoint, int send_hwm,
                                       std::uint64_t boot_id, std::shared_ptr<LinkGuard> guard)
    : guard_(std::move(guard)), socket_(context, ZMQ_XPUB), boot_id_(boot_id) {  // XPUB: a PUB that also reports subscriptions
  if (send_hwm < 0) throw LinkError("send high-water mark " + std::to_string(send_hwm) + " is negative");
  socket_.set_int(ZMQ_SNDHWM, send_hwm, "ZMQ_SNDHWM");
  // Refuse (EAGAIN) instead of silently dropping at the HWM, so every drop is counted.
  socket_.set_int(ZMQ_XPUB_NODROP, 1, "ZMQ_XPUB_NODROP");
  // Pass every subscription up, not only the first per topic, so waiting for N
  // subscribers works when they all subscribe to the same prefix.
  socket_.set_int(ZMQ_XPUB_VERBOSE, 1, "ZMQ_XPUB_VERBOSE");
  if (guard_) guard_->secure(socket_, LinkSocketKind::kTelemetry);
  socket_.bind(endpoint);
}

TelemetryPublisher::Result TelemetryPublisher::publish(std::uint32_t lcc_id, std::int64_t timestamp_ns,
                                                       std::uint32_t n_units, std::uint32_t n_features,
                                                       const float* values, const float* setpoint_a,
                                                       const UnitState* state, std::uint16_t schema_id) {
  std::uint64_t& next = next_seq_[lcc_id];
  auto topic_it = topics_.find(lcc_id);
  if (topic_it == topics_.end()) topic_it = topics_.emplace(lcc_id, telemetry_topic(lcc_id)).first;
  TelemetryHeader h;
  h.lcc_id = lcc_id;
  h.boot_id = boot_id_;
  h.seq = next++;
  h.timestamp_ns = timestamp_ns;
  h.schema_id = schema_id;
  h.n_units = n_units;
  h.n_features = n_features;
  encode_telemetry(h, values, setpoint_a, state, buffer_);

  const std::string& topic = topic_it->second;
  if (zmq_send(socket_.handle(), topic.data(), topic.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    if (zmq_errno() != EAGAIN) fail_zmq("sending telemetry topic failed");
    ++dropped_;
    return {h.seq, false};
  }
  // The HWM counts whole messages, so once the first part is accepted the second is too.
  if (zmq_send(socket_.handle(), buffer_.data(), buffer_.size(), ZMQ_DONTWAIT) < 0)
    fail_zmq("sending telemetry payload failed");
  ++sent_;
  return {h.seq, true};
}

bool TelemetryPublisher::read_subscription(int timeout_ms) {
  // The guard's sockets are polled too: a CURVE subscriber's subscription only arrives once
  // its handshake has been answered.
  zmq_pollitem_t items[8];
  int n = 0;
  items[n++] = {socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (guard_)
    for (void* s : guard_->sockets())
      if (n < 8) items[n++] = {s, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(items, n, timeout_ms) < 0) {
    if (zmq_errno() == EINTR) return false;
    fail_zmq("polling for subscriptions failed");
  }
  if (guard_) guard_->serve();
  if (!(items[0].revents & ZMQ_POLLIN)) return false;
  Message msg;
  if (zmq_msg_recv(msg.get(), socket_.handle(), ZMQ_DONTWAIT) < 0) return false;
  // Byte 0 is 1 for subscribe, 0 for unsubscribe; the rest is the topic prefix.
  if (msg.size() > 0 && msg.data()[0] == 1) ++subscriptions_;
  return true;
}

void TelemetryPublisher::poll_subscriptions() {
  while (read_subscription(0)) {
  }
}

bool TelemetryPublisher::wait_for_subscriber(std::chrono::nanoseconds timeout, std::uint64_t count) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  poll_subscriptions();
  while (subscriptions_ < count) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    read_subscription(static_cast<int>(std::min<long long>(left.count(), 100)));
  }
  return true;
}

// ------------------------------------------------------------------------ subscriber

FeedbackSubscriber::FeedbackSubscriber(ZmqContext& context, const std::string& endpoint, int recv_hwm,
                                       const std::vector<std::uint32_t>& lcc_ids, std::shared_ptr<LinkGuard> guard)
    : guard_(std::move(guard)), socket_(context, ZMQ_SUB) {
  if (recv_hwm < 0) throw LinkError("receive high-water mark " + std::to_string(recv_hwm) + " is negative");
  socket_.set_int(ZMQ_RCVHWM, recv_hwm, "ZMQ_RCVHWM");
  if (lcc_ids.empty()) {
    socket_.set_bytes(ZMQ_SUBSCRIBE, "lcc.", 4, "ZMQ_SUBSCRIBE");
  } else {
    for (const auto id : lcc_ids) {
      const std::string topic = feedback_topic(id);
      socket_.set_bytes(ZMQ_SUBSCRIBE, topic.data(), topic.size(), "ZMQ_SUBSCRIBE");
    }
  }
  if (guard_) guard_->secure(socket_, LinkSocketKind::kFeedback);
  socket_.bind(endpoint);
  std::size_t len = sizeof notify_fd_;
  if (zmq_getsockopt(socket_.handle(), ZMQ_FD, &notify_fd_, &len) != 0) fail_zmq("reading ZMQ_FD failed");
  wait_fds_.push_back(pollfd{notify_fd_, POLLIN, 0});
  if (guard_)
    for (const int fd : guard_->notify_fds()) wait_fds_.push_back(pollfd{fd, POLLIN, 0});
}

bool FeedbackSubscriber::try_receive(Feedback& out) {
  for (;;) {
    Message topic;
    if (zmq_msg_recv(topic.get(), socket_.handle(), ZMQ_DONTWAIT) < 0) {
      if (zmq_errno() == EAGAIN) return false;
      fail_zmq("receiving feedback failed");
    }
    bool well_formed = topic.more();
    Message payload;
    if (well_formed) {
      if (zmq_msg_recv(payload.get(), socket_.handle(), 0) < 0) fail_zmq("receiving feedback payload failed");
      // Extra parts make the message malformed; drain them so the next read starts clean.
      while (payload.more()) {
        well_formed = false;
        Message extra;
        if (zmq_msg_recv(extra.get(), socket_.handle(), 0) < 0) fail_zmq("draining feedback parts failed");
        if (!extra.more()) break;
      }
    }
    if (!well_formed) {
      ++rejects_["bad_topic"];
      continue;
    }
    try {
      out = decode_feedback(payload.data(), payload.size());
    } catch (const FrameError& e) {
      ++rejects_[e.code()];
      continue;
    }
    const std::string expected = feedback_topic(out.lcc_id);
    if (topic.size() != expected.size() || std::memcmp(topic.data(), expected.data(), expected.size()) != 0) {
      ++rejects_["bad_topic"];
      continue;
    }
    ++received_;
    return true;
  }
}

std::optional<Feedback> FeedbackSubscriber::poll(std::chrono::nanoseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Feedback f;
  for (;;) {
    if (guard_) guard_->serve();  // handshakes waiting for the ZAP answer (never blocks)
    if (try_receive(f)) return f;
    // ZMQ_FD is edge-triggered: after a wakeup (or before sleeping) ZMQ_EVENTS says whether
    // a message is already queued; only sleep when it is not.
    int events = 0;
    std::size_t len = sizeof events;
    if (zmq_getsockopt(socket_.handle(), ZMQ_EVENTS, &events, &len) != 0) fail_zmq("reading ZMQ_EVENTS failed");
    if (events & ZMQ_POLLIN) continue;
    const auto remaining = deadline - std::chrono::steady_clock::now();
    if (remaining <= std::chrono::nanoseconds::zero()) return std::nullopt;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(remaining).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    if (ppoll(wait_fds_.data(), wait_fds_.size(), &ts, nullptr) < 0) {
      if (errno == EINTR) return std::nullopt;  // a signal: let the caller check its stop flag
      throw LinkError(std::string("ppoll failed: ") + std::strerror(errno));
    }
  }
}

}  // namespace laserguard
