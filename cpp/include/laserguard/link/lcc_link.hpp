#pragma once
// lcc_link: the small ZeroMQ client library an LCC links to talk to laserguard
// (docs/protocol.md). The LCC is the fixed endpoint: its telemetry PUB and feedback SUB
// both bind; detectors and other consumers connect.
//
// Delivery policy (PUB/SUB drops by design; we make every drop visible):
//  * Sends never block. The PUB socket sets ZMQ_XPUB_NODROP, so when a subscriber's queue
//    is at the high-water mark zmq_send returns EAGAIN instead of silently discarding; the
//    frame is dropped and counted (frames_dropped) and the simulation keeps its pace.
//  * High-water marks are explicit (LinkOptions::send_hwm / recv_hwm, in messages).
//  * Late joiners: a subscriber that connects misses what was published before its
//    subscription reached the publisher (tens of ms, up to ZMQ's 100 ms reconnect interval).
//    Sequence numbers start at 0 per LCC and grow by one per frame, so a consumer treats
//    its first frame as the baseline and counts later gaps; nothing is replayed. The
//    publisher is an XPUB socket, so it sees subscriptions arrive: an LCC that must not
//    lose its first frames calls wait_for_subscriber() before it starts (lcc-sim
//    --wait-for-subscriber). The LCC likewise cannot know whether frames
//    were seen: feedback arrives for some sequence numbers and not others, and lcc-sim
//    reports "frames_without_feedback" instead of assuming delivery.
//  * Every socket has linger 0: closing never waits for unsent messages.
//
// Security (docs/protocol.md §9): given a LinkGuard (link_guard.hpp), both sockets are CurveZMQ
// servers that only admit clients on the guard's allow-list (feedback: command keys only).
// Without one they are plain ZeroMQ, as before: fine on loopback, not on a plant network.
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "laserguard/wire/telemetry_codec.hpp"

namespace laserguard {

class LinkGuard;  // link_guard.hpp: server-side CURVE and the ZAP allow-list

class LinkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Owns a zmq context (zmq_ctx_new / zmq_ctx_term).
class ZmqContext {
 public:
  ZmqContext();
  ~ZmqContext();
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;
  void* handle() const noexcept { return ctx_; }

 private:
  void* ctx_;
};

// Owns one zmq socket (closed with linger 0). Movable, not copyable.
class ZmqSocket {
 public:
  ZmqSocket(ZmqContext& context, int type);
  ~ZmqSocket();
  ZmqSocket(ZmqSocket&& other) noexcept;
  ZmqSocket& operator=(ZmqSocket&& other) noexcept;
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;

  void set_int(int option, int value, const char* name);
  void set_bytes(int option, const void* data, std::size_t size, const char* name);
  void bind(const std::string& endpoint);
  void connect(const std::string& endpoint);
  // The endpoint actually bound (resolves "tcp://127.0.0.1:*" to the chosen port).
  std::string last_endpoint() const;
  void* handle() const noexcept { return socket_; }

 private:
  void close() noexcept;
  void* socket_;
};

struct LinkOptions {
  std::string telemetry_endpoint = "tcp://127.0.0.1:5556";
  std::string feedback_endpoint = "tcp://127.0.0.1:5555";
  int send_hwm = 1000;  // frames queued per subscriber before sends are refused
  int recv_hwm = 1000;  // feedback messages queued before the SUB drops
};

// A fresh boot id: 64 bits from std::random_device, so two starts of an LCC (whose sequence
// numbers both begin at 0) never share one. Consumers key frames on (lcc, boot, seq).
std::uint64_t random_boot_id();

// Telemetry publisher: binds, assigns per-LCC sequence numbers, never blocks. Every frame
// carries `boot_id` (docs/protocol.md): one publisher is one boot of the LCC.
class TelemetryPublisher {
 public:
  // With `guard`, the socket is a CURVE server admitting read and command keys; the guard
  // lives as long as any socket it secures (its ZAP handler must outlive them).
  TelemetryPublisher(ZmqContext& context, const std::string& endpoint, int send_hwm,
                     std::uint64_t boot_id = random_boot_id(), std::shared_ptr<LinkGuard> guard = nullptr);
  std::uint64_t boot_id() const noexcept { return boot_id_; }

  // Encodes and sends one frame with the LCC's next sequence number. Returns the sequence
  // number used; the number is consumed even when the frame is dropped (HWM reached), so
  // the drop shows up as a gap downstream, exactly like a loss on the wire.
  struct Result {
    std::uint64_t seq;
    bool sent;
  };
  // `values` is n_units x n_features; `setpoint_a` (A, NaN = unknown) and `state` are per unit.
  Result publish(std::uint32_t lcc_id, std::int64_t timestamp_ns, std::uint32_t n_units, std::uint32_t n_features,
                 const float* values, const float* setpoint_a, const UnitState* state, std::uint16_t schema_id = 1);

  std::uint64_t frames_sent() const noexcept { return sent_; }
  std::uint64_t frames_dropped() const noexcept { return dropped_; }
  std::string endpoint() const { return socket_.last_endpoint(); }

  // Waits up to `timeout` until at least one subscription has arrived; returns whether one
  // has. Subscriptions are also read (without waiting) by poll_subscriptions().
  // True once `count` subscriptions (one per subscriber and topic prefix) have arrived.
  bool wait_for_subscriber(std::chrono::nanoseconds timeout, std::uint64_t count = 1);
  void poll_subscriptions();
  std::uint64_t subscriptions() const noexcept { return subscriptions_; }

 private:
  bool read_subscription(int timeout_ms);
  std::shared_ptr<LinkGuard> guard_;  // before socket_: destroyed after it
  ZmqSocket socket_;
  std::uint64_t boot_id_;
  std::uint64_t subscriptions_ = 0;
  std::map<std::uint32_t, std::uint64_t> next_seq_;
  std::map<std::uint32_t, std::string> topics_;
  std::vector<std::uint8_t> buffer_;  // reused: no allocation per frame
  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
};

// Feedback subscriber: binds, subscribes to "lcc.<id>.anomaly" for the given LCCs (all
// LCCs when empty), validates every message and counts rejects by reason.
class FeedbackSubscriber {
 public:
  // With `guard`, the socket is a CURVE server admitting command keys only: a frame from any
  // other client never arrives here. poll() also answers the guard's handshakes.
  FeedbackSubscriber(ZmqContext& context, const std::string& endpoint, int recv_hwm,
                     const std::vector<std::uint32_t>& lcc_ids = {}, std::shared_ptr<LinkGuard> guard = nullptr);

  // Returns the next valid feedback message, waiting at most `timeout` (0 = just check).
  // Invalid messages are counted in rejects() and skipped. Wakes on the socket's
  // notification fd with ns-resolution timeouts, so a 1 kHz loop can wait between ticks.
  std::optional<Feedback> poll(std::chrono::nanoseconds timeout);

  std::uint64_t received() const noexcept { return received_; }
  // Reject counts by FrameError reason code ("bad_magic", ...); "bad_topic" for a message
  // whose topic does not match its payload's LCC or that is not two frames.
  const std::map<std::string, std::uint64_t>& rejects() const noexcept { return rejects_; }
  std::string endpoint() const { return socket_.last_endpoint(); }

 private:
  bool try_receive(Feedback& out);
  std::shared_ptr<LinkGuard> guard_;  // before socket_: destroyed after it
  ZmqSocket socket_;
  int notify_fd_ = -1;
  std::vector<pollfd> wait_fds_;  // notify_fd_ then the guard's: reused by every poll()
  std::uint64_t received_ = 0;
  std::map<std::string, std::uint64_t> rejects_;
  std::vector<std::uint8_t> topic_, payload_;
};

}  // namespace laserguard
