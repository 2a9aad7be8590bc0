#include "reports/base.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "harness/core/run_record.hpp"
#include "reports/io.hpp"

namespace masklab::reports {
namespace {

using nlohmann::json;

std::string esc(const std::string& text) { return html_escape(text); }

// A JSON leaf as short text.
std::string shown(const json& value) {
  if (value.is_null()) return "\u2013";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return fmt::format("{:.4g}", value.get<double>());
  return value.dump();
}

std::string string_at(const json& record, const std::string& dotted) {
  const json v = record.is_object() ? lookup_dotted(record, dotted) : json();
  return v.is_string() ? v.get<std::string>() : "";
}

// "" -> how many runs, in order of first sight; one line when more than one value occurs.
void add_if_split(std::vector<std::string>& out, const std::vector<std::pair<std::string, std::string>>& run_values,
                  const std::string& what) {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // value -> run ids
  for (const auto& [id, value] : run_values) {
    auto it = std::find_if(groups.begin(), groups.end(), [&value = value](const auto& g) { return g.first == value; });
    if (it == groups.end()) {
      groups.push_back({value, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(id);
  }
  if (groups.size() < 2) return;
  std::string line = "runs disagree on " + what + ":";
  for (const auto& [value, ids] : groups) {
    line += fmt::format(" {} ({} run{}: {}{});", value.empty() ? "none" : value, ids.size(), ids.size() == 1 ? "" : "s",
                        ids.front(), ids.size() > 1 ? ", ..." : "");
  }
  line.pop_back();
  out.push_back(line);
}

}  // namespace

std::vector<std::string> base_disagreements(const ReportInputs& inputs) {
  const std::string sweep_hash = string_at(inputs.sweep.base, "hash");
  std::vector<std::pair<std::string, std::string>> hashes, files, inits;
  for (const auto& run : inputs.runs) {
    hashes.emplace_back(run.id, run.base_hash);
    if (run.status == "missing") continue;  // no record: nothing it started from is known
    // Only runs that recorded the file: older records and other tools leave it out.
    if (const std::string file = string_at(run.metrics, "base.init_from"); !file.empty()) files.emplace_back(run.id, file);
    if (run.status == "ok" && !sweep_hash.empty()) inits.emplace_back(run.id, string_at(run.metrics, "same_job.init_hash"));
  }
  std::vector<std::string> out;
  add_if_split(out, hashes, "their base (base_hash)");
  if (!sweep_hash.empty()) {
    std::vector<std::string> others;
    for (const auto& [id, hash] : hashes) {
      if (hash != sweep_hash) others.push_back(id);
    }
    if (!others.empty() && out.empty()) {  // all agree with each other, not with the sweep
      out.push_back(fmt::format("{} run(s) name another base than the sweep's {} (first: {})", others.size(), sweep_hash,
                                others.front()));
    }
  }
  add_if_split(out, files, "the file they started from (base.init_from)");
  add_if_split(out, inits, "their initial weights (same_job.init_hash)");
  return out;
}

namespace {

std::string row(const std::string& key, const std::string& value_html) {
  return "<tr><th>" + esc(key) + "</th><td>" + value_html + "</td></tr>\n";
}

// The stage's settings a reader needs to judge the base: what it trained on, how long, which model.
std::string stage_rows(const json& base, const json& stage_metrics) {
  const json& c = base.value("config", json::object());
  std::string out;
  out += row("stage strategy, seed", "<code>" + esc(shown(lookup_dotted(c, "strategy"))) + "</code>, seed " +
                                         esc(shown(lookup_dotted(c, "seed"))));
  out += row("stage steps", esc(shown(lookup_dotted(c, "train.steps"))) + " steps, batch " +
                                esc(shown(lookup_dotted(c, "train.batch_size"))) + ", lr " +
                                esc(shown(lookup_dotted(c, "train.lr"))));
  std::string model;
  if (c.contains("model") && c["model"].is_object()) {
    for (const auto& [key, value] : c["model"].items()) {
      if (key == "init_from" && shown(value).empty()) continue;
      model += (model.empty() ? "" : ", ") + key + " " + shown(value);
    }
  }
  out += row("model", "<code>" + esc(model) + "</code>");
  if (base.contains("text") && base["text"].is_object()) {
    const json& t = base["text"];
    std::string tasks;
    for (const auto& task : t.value("tasks", json::array())) tasks += (tasks.empty() ? "" : ", ") + shown(task);
    out += row("data", fmt::format("the task world's text: {} statements per task ({}), text seed {}",
                                   esc(shown(t.value("documents", json()))), esc(tasks), esc(shown(t.value("seed", json())))));
  } else {
    const std::string file = shown(lookup_dotted(c, "data.train"));
    out += row("data", file.empty() ? "built-in tasks" : "<span class=\"file\">" + esc(file) + "</span>");
  }
  if (stage_metrics.is_object()) {
    out += row("stage record", fmt::format("status {}, {} s, held-out NLL {}, {} tokens trained",
                                           esc(shown(stage_metrics.value("status", json()))),
                                           esc(shown(stage_metrics.value("wall_seconds", json()))),
                                           esc(shown(lookup_dotted(stage_metrics, "eval.completion_nll"))),
                                           esc(shown(stage_metrics.value("tokens_trained", json())))));
  } else {
    out += row("stage record", "not found (the stage has not run into this folder's cache)");
  }
  return out;
}

}  // namespace

std::string base_section_html(const ReportInputs& inputs) {
  const json& base = inputs.sweep.base;
  const std::vector<std::string> problems = base_disagreements(inputs);
  if (!base.is_object() && problems.empty()) return "";
  std::string out = "<h3>Base</h3>\n";
  if (base.is_object()) {
    const std::string kind = string_at(base, "kind");
    out += "<p>Every run started from one " +
           std::string(kind == "pretrain" ? "pretrained base (a stage run once, before the runs)" : "checkpoint") +
           ".</p>\n<table>\n";
    out += row("kind", esc(kind));
    out += row("hash", "<code>" + esc(string_at(base, "hash")) + "</code>");
    out += row("path", "<span class=\"file\">" + esc(string_at(base, "path")) + "</span>");
    if (kind == "pretrain") out += stage_rows(base, inputs.sweep.base_metrics);
    out += "</table>\n";
  }
  for (const auto& line : problems) out += "<p class=\"note\">Warning: " + esc(line) + "</p>\n";
  return out;
}

}  // namespace masklab::reports
