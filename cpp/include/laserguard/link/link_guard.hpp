#pragma once
// LinkGuard: server-side CurveZMQ for an LCC's two sockets (docs/protocol.md §9).
//
// The LCC is the CURVE server on its telemetry XPUB and feedback SUB. Clients prove they hold
// a key on the allow-list through ZAP (RFC 27): libzmq sends each handshake's client public
// key to the REP socket bound at inproc://zeromq.zap.01 in the same context, and waits for
// the answer before the connection carries a single message.
//
// Authorisation is per socket, through the ZAP domain each socket announces:
//   telemetry socket ("laserguard.telemetry"): read and command keys may subscribe;
//   feedback socket  ("laserguard.feedback"):  command keys only.
// That is enough to keep a read key's frames away from the control logic: a refused handshake
// never opens the connection, so nothing a read (or unknown) key sends reaches the SUB socket.
// (Per-message checks of the sender's User-Id would add a lookup per frame to protect
// against nothing more.)
//
// No thread: the ZAP socket is answered by serve(), which TelemetryPublisher and
// FeedbackSubscriber call whenever they poll (the guard's sockets are polled next to theirs).
// A connecting client therefore waits until the LCC's loop next polls; frames never wait for
// a handshake. A firmware loop that polls neither must call serve() itself.
//
// Refused handshakes are counted per socket and reason, and logged once per peer key (or,
// for clients without CURVE, once per socket and reason): a rogue client that reconnects
// every 100 ms is visible in the counters without flooding the log.
//   unknown_key   the client's public key is not on the allow-list
//   read_role     a read key tried the feedback socket
//   no_curve      the client does not speak CURVE (plain ZeroMQ)
//   bad_handshake the CURVE handshake failed: usually the client has the wrong server key
//   handshake_failed the client hung up mid-handshake: a plain client that noticed the
//                 mismatch first, a client with the wrong server key, or a port scan
//   protocol_error other handshake failures reported by libzmq
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "laserguard/link/curve_keys.hpp"
#include "laserguard/link/lcc_link.hpp"

namespace laserguard {

enum class LinkSocketKind { kTelemetry, kFeedback };

class LinkGuard {
 public:
  using Logger = std::function<void(const std::string&)>;
  // Binds the context's ZAP endpoint: one guard per context. `log` gets one line per newly
  // refused peer (default: stderr).
  LinkGuard(ZmqContext& context, CurveKeyPair server, AllowList allow, Logger log = {});
  LinkGuard(const LinkGuard&) = delete;
  LinkGuard& operator=(const LinkGuard&) = delete;

  // Makes `socket` a CURVE server that authorises through this guard; call before bind.
  void secure(ZmqSocket& socket, LinkSocketKind kind);

  // The ZAP socket and the handshake monitors, to poll next to the caller's own sockets.
  const std::vector<void*>& sockets() const noexcept { return sockets_; }
  const std::vector<int>& notify_fds() const noexcept { return fds_; }
  // Answers every pending ZAP request and reads every handshake failure; never blocks.
  void serve();

  // socket ("telemetry" / "feedback") -> reason -> refused handshakes.
  using Counts = std::map<std::string, std::map<std::string, std::uint64_t>>;
  const Counts& refused() const noexcept { return refused_; }
  // socket -> role -> accepted handshakes.
  const Counts& accepted() const noexcept { return accepted_; }
  std::uint64_t refused_total() const;
  // Distinct refused peers logged so far (keys; socket and reason for failures before ZAP),
  // at most 4096: beyond that refusals are only counted.
  std::size_t refused_peers() const noexcept { return logged_.size(); }
  const std::string& public_key() const noexcept { return server_.public_z85; }
  const AllowList& allow_list() const noexcept { return allow_; }

 private:
  bool serve_zap();
  bool serve_monitor(std::size_t index);
  void refuse(const std::string& socket, const std::string& reason, const std::string& peer,
              const std::string& message);

  CurveKeyPair server_;
  AllowList allow_;
  Logger log_;
  ZmqContext& context_;
  ZmqSocket zap_;
  std::vector<ZmqSocket> monitors_;
  std::vector<std::string> monitor_socket_;  // "telemetry" / "feedback" per monitor
  std::vector<void*> sockets_;
  std::vector<int> fds_;
  Counts refused_, accepted_;
  std::set<std::string> logged_;
};

}  // namespace laserguard
