#include "laserguard/link/curve_keys.hpp"

#include <sys/stat.h>
#include <zmq.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace laserguard {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LinkError("cannot read key file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// The quoted value of `name = "..."` in a ZeroMQ certificate file, or "" when absent.
std::string certificate_value(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    line = trim(line);
    if (line.rfind(name, 0) != 0) continue;
    const auto open = line.find('"');
    const auto close = line.rfind('"');
    if (open == std::string::npos || close <= open) return {};
    return line.substr(open + 1, close - open - 1);
  }
  return {};
}

std::string octal_mode(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777U);
  return text;
}

}  // namespace

const char* role_name(ClientRole role) noexcept { return role == ClientRole::kCommand ? "command" : "read"; }

CurveKey decode_z85_key(const std::string& z85, const std::string& what) {
  CurveKey key{};
  if (z85.size() != 40 || zmq_z85_decode(key.data(), z85.c_str()) == nullptr)
    throw LinkError(what + ": '" + z85 + "' is not a 40-character Z85 CURVE key");
  return key;
}

std::string encode_z85_key(const CurveKey& key) {
  char text[41] = {};
  if (zmq_z85_encode(text, key.data(), key.size()) == nullptr) throw LinkError("Z85 encoding failed");
  return text;
}

CurveKeyPair read_secret_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw LinkError("cannot read secret key file '" + path + "'");
  // A secret key others can read is no longer secret: refuse, as ssh does.
  if ((st.st_mode & 077U) != 0)
    throw LinkError("secret key file '" + path + "' has mode " + octal_mode(st.st_mode) +
                    "; it must be readable by its owner only (chmod 600 '" + path + "')");
  const std::string text = read_text(path);
  CurveKeyPair pair;
  pair.secret_z85 = certificate_value(text, "secret-key");
  if (pair.secret_z85.empty()) pair.secret_z85 = trim(text);  // a bare Z85 key
  decode_z85_key(pair.secret_z85, "secret key file '" + path + "'");
  char derived[41] = {};
  if (zmq_curve_public(derived, pair.secret_z85.c_str()) != 0)
    throw LinkError("secret key file '" + path + "': cannot derive its public key (libzmq without CURVE?)");
  pair.public_z85 = derived;
  const std::string stated = certificate_value(text, "public-key");
  if (!stated.empty() && stated != pair.public_z85)
    throw LinkError("secret key file '" + path + "': its public-key line does not belong to its secret key");
  return pair;
}

std::string read_public_key_file(const std::string& path) {
  const std::string text = read_text(path);
  std::string key = certificate_value(text, "public-key");
  if (key.empty()) key = trim(text);
  decode_z85_key(key, "public key file '" + path + "'");
  return key;
}

void AllowList::add(const std::string& public_z85, ClientRole role, const std::string& name) {
  const CurveKey key = decode_z85_key(public_z85, "allow-list entry '" + name + "'");
  const auto [it, inserted] = entries_.emplace(key, Entry{role, name});
  if (!inserted)
    throw LinkError("allow-list: key of '" + name + "' (" + role_name(role) + ") is already listed as '" +
                    it->second.name + "' (" + role_name(it->second.role) + "); a key has one role");
}

AllowList AllowList::from_directory(const std::string& dir) {
  if (!fs::is_directory(dir)) throw LinkError("allow-list directory '" + dir + "' does not exist");
  AllowList list;
  for (const ClientRole role : {ClientRole::kCommand, ClientRole::kRead}) {
    const fs::path folder = fs::path(dir) / role_name(role);
    if (!fs::is_directory(folder)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file() && entry.path().extension() == ".key") files.push_back(entry.path());
    std::sort(files.begin(), files.end());  // deterministic errors and logs
    for (const auto& file : files) list.add(read_public_key_file(file.string()), role, file.stem().string());
  }
  if (list.size() == 0)
    throw LinkError("allow-list directory '" + dir + "' has no client keys (expected " + dir + "/command/*.key and " +
                    dir + "/read/*.key)");
  return list;
}

const AllowList::Entry* AllowList::find(const CurveKey& key) const {
  const auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

std::size_t AllowList::count(ClientRole role) const {
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(), [role](const auto& e) { return e.second.role == role; }));
}

}  // namespace laserguard
