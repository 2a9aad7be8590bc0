#pragma once
// The run record in DIR: config.yaml, curve.jsonl, metrics.json (written last,
// atomically: its presence means the run finished), samples.jsonl and, with
// --save-model, model.pt. Nothing is lost (docs/design.md, invariant 8): every file is
// written to a temporary name and renamed into place.
#include <string>

#include <nlohmann/json.hpp>

#include "harness/core/files.hpp"

namespace masklab {

nlohmann::json read_json_file(const std::string& path);  // throws UserError naming the file

std::string iso_time_now();  // UTC, "2026-11-29T12:00:00Z"

// What built this binary: masklab version, git sha, LibTorch version.
nlohmann::json build_provenance();
// Where and with what this run ran: build_provenance(), device, threads, host.
nlohmann::json provenance(const std::string& device, int threads);

// curve.jsonl: one JSON object per eval point, each line written as it
// comes; a failed write throws, naming the path and the OS error.
class CurveWriter {
 public:
  explicit CurveWriter(const std::string& path) : out_(path) {}
  void append(const nlohmann::json& point) { out_.append(point.dump() + "\n"); }

 private:
  AppendFile out_;
};

// Looks up "a.b.c" in nested objects, or the literal key "a.b.c"; null if absent.
nlohmann::json lookup_dotted(const nlohmann::json& root, const std::string& dotted);

}  // namespace masklab
