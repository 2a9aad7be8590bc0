#include "harness/core/run_record.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>



#include "harness/core/errors.hpp"
#include "harness/core/text.hpp"
#include "masklab_version.hpp"

namespace masklab {

nlohmann::json read_json_file(const std::string& path) {
  std::string why;
  const auto text = read_file(path, &why);
  if (!text) throw UserError(path + ": cannot read: " + why);
  try {
    return nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + ": " + invalid_json(e.what()));
  }
}

std::string iso_time_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

nlohmann::json build_provenance() {
  return {{"masklab_version", MASKLAB_VERSION},
          {"git_sha", MASKLAB_GIT_SHA},
          {"libtorch_version", MASKLAB_LIBTORCH_VERSION}};
}

nlohmann::json provenance(const std::string& device, int threads) {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  nlohmann::json out = build_provenance();
  out["device"] = device;
  out["threads"] = threads;
  out["host"] = host;
  return out;
}

nlohmann::json lookup_dotted(const nlohmann::json& root, const std::string& dotted) {
  if (root.is_object() && root.contains(dotted)) return root.at(dotted);
  const nlohmann::json* node = &root;
  std::stringstream ss(dotted);
  for (std::string part; std::getline(ss, part, '.');) {
    if (!node->is_object() || !node->contains(part)) return nullptr;
    node = &node->at(part);
  }
  return *node;
}

}  // namespace masklab
