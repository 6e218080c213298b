#pragma once
// lcc-sim's link security: CURVE from --curve-keys / --allow-dir, and the safe default without
// keys (a warning on loopback, a refusal on any other address unless --insecure).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "laserguard/link/lcc_link.hpp"

namespace laserguard {
class LinkGuard;
}

namespace lcc_sim {

struct SecurityOptions {
  std::string curve_keys;  // key directory: lcc.key_secret and allow/
  std::string allow_dir;   // default: <curve_keys>/allow
  bool insecure = false;   // allow a non-loopback bind without keys
};

// True for tcp endpoints on 127.x / localhost / ::1, and for ipc:// and inproc://.
bool is_loopback_endpoint(const std::string& endpoint);

// The guard for both sockets, or nullptr without keys (after the warning). Throws
// std::invalid_argument (exit status 2) for a non-loopback bind without keys and without
// --insecure, and for unusable key files (the message names the file).
std::shared_ptr<laserguard::LinkGuard> make_link_guard(laserguard::ZmqContext& context, const SecurityOptions& options,
                                                       const std::vector<std::string>& endpoints);

// The summary's "link_security" object: whether CURVE was on, the allow-list size by role,
// accepted and refused handshakes by socket and reason.
nlohmann::json link_security_summary(const laserguard::LinkGuard* guard);

}  // namespace lcc_sim
