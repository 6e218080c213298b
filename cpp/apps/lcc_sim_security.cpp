#include "lcc_sim_security.hpp"

#include <stdexcept>

#include "laserguard/link/curve_keys.hpp"
#include "laserguard/link/link_guard.hpp"
#include "lcc_sim_log.hpp"

namespace lcc_sim {

namespace lg = laserguard;

bool is_loopback_endpoint(const std::string& endpoint) {
  const std::string tcp = "tcp://";
  if (endpoint.rfind(tcp, 0) != 0) return true;  // ipc://, inproc://: never leave the host
  const std::string address = endpoint.substr(tcp.size());
  const std::string host = address.substr(0, address.rfind(':'));
  return host == "localhost" || host == "[::1]" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::shared_ptr<lg::LinkGuard> make_link_guard(lg::ZmqContext& context, const SecurityOptions& options,
                                               const std::vector<std::string>& endpoints) {
  if (options.curve_keys.empty()) {
    if (!options.allow_dir.empty()) throw std::invalid_argument("--allow-dir needs --curve-keys DIR");
    for (const auto& endpoint : endpoints) {
      if (is_loopback_endpoint(endpoint)) continue;
      if (!options.insecure)
        throw std::invalid_argument("refusing to bind " + endpoint +
                                    " without --curve-keys: anyone who reaches it could command the lasers; "
                                    "pass --curve-keys DIR (laserguard keys generate), or --insecure on a "
                                    "trusted network");
      log(LogLevel::kWarning, "--insecure: %s is plain ZeroMQ on a non-loopback address", endpoint.c_str());
      return nullptr;
    }
    log(LogLevel::kWarning,
        "no --curve-keys: telemetry and feedback are plain ZeroMQ on loopback; any local process may send feedback");
    return nullptr;
  }
  const std::string allow_dir = options.allow_dir.empty() ? options.curve_keys + "/allow" : options.allow_dir;
  try {
    lg::CurveKeyPair keys = lg::read_secret_key_file(options.curve_keys + "/lcc.key_secret");
    lg::AllowList allow = lg::AllowList::from_directory(allow_dir);
    log(LogLevel::kInfo, "CURVE on: server key %s, allow-list %s (%zu command, %zu read key(s))",
        keys.public_z85.c_str(), allow_dir.c_str(), allow.count(lg::ClientRole::kCommand),
        allow.count(lg::ClientRole::kRead));
    return std::make_shared<lg::LinkGuard>(context, std::move(keys), std::move(allow), [](const std::string& line) {
      log(LogLevel::kWarning, "%s", line.c_str());
    });
  } catch (const lg::LinkError& e) {
    throw std::invalid_argument(e.what());  // a configuration error: exit status 2
  }
}

nlohmann::json link_security_summary(const lg::LinkGuard* guard) {
  if (guard == nullptr) return {{"curve", false}};
  nlohmann::json refused = nlohmann::json::object(), accepted = nlohmann::json::object();
  for (const auto& [socket, reasons] : guard->refused())
    for (const auto& [reason, n] : reasons) refused[socket][reason] = n;
  for (const auto& [socket, roles] : guard->accepted())
    for (const auto& [role, n] : roles) accepted[socket][role] = n;
  return {{"curve", true},
          {"server_key", guard->public_key()},
          {"allow_list",
           {{"command", guard->allow_list().count(lg::ClientRole::kCommand)},
            {"read", guard->allow_list().count(lg::ClientRole::kRead)}}},
          {"accepted", accepted},
          {"refused", refused},
          {"refused_total", guard->refused_total()},
          {"refused_peers", guard->refused_peers()}};
}

}  // namespace lcc_sim
