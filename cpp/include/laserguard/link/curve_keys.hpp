#pragma once
// CurveZMQ keys for the LCC side of the link (docs/protocol.md §9): the LCC's own key pair and
// the allow-list of client public keys with their roles.
//
// Key files are ZeroMQ's certificate format, as written by pyzmq's zmq.auth, czmq and
// `laserguard keys generate`:
//     curve
//         public-key = "<40 Z85 characters>"
//         secret-key = "<40 Z85 characters>"      (only in the *.key_secret file)
// A file holding nothing but the 40-character Z85 key (what zmq_curve_keypair prints) is read
// too. A secret file readable by group or others is refused, naming the file and its mode.
#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "laserguard/link/lcc_link.hpp"  // LinkError

namespace laserguard {

// What a client key may do. Read: subscribe to telemetry. Command: that, and send feedback.
enum class ClientRole { kRead, kCommand };
const char* role_name(ClientRole role) noexcept;

using CurveKey = std::array<std::uint8_t, 32>;

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters
};

// Z85 text (40 characters) <-> 32 raw bytes; throws LinkError naming the bad value.
CurveKey decode_z85_key(const std::string& z85, const std::string& what);
std::string encode_z85_key(const CurveKey& key);

// Reads a secret key file (mode 0600 or stricter, else LinkError). When the file holds only the
// secret key, the public key is derived from it.
CurveKeyPair read_secret_key_file(const std::string& path);
// Reads the public key from a *.key (or *.key_secret) file.
std::string read_public_key_file(const std::string& path);

// Client public keys and their roles. On disk (LCC side): DIR/command/*.key and DIR/read/*.key,
// one public key file per client; the file name (without .key) names the client in logs.
class AllowList {
 public:
  struct Entry {
    ClientRole role;
    std::string name;
  };
  // A key listed twice is a configuration error (LinkError): an operator who demotes a key by
  // copying it to read/ and forgets to remove it from command/ must hear about it.
  void add(const std::string& public_z85, ClientRole role, const std::string& name);
  static AllowList from_directory(const std::string& dir);
  const Entry* find(const CurveKey& key) const;
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t count(ClientRole role) const;

 private:
  std::map<CurveKey, Entry> entries_;
};

}  // namespace laserguard
