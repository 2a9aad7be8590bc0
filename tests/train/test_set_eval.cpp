// harness/train/set_eval and the run record it feeds: metrics.json's
// eval.<set> and eval_sets, and DIR/eval_examples.jsonl, whose lines pool to
// the run's own figures.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness/train/run.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
using json = nlohmann::json;

namespace {

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(test::read_text(path));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

json run(const Config& config, const test::TempDir& dir, const std::string& name) {
  TrainOptions options;
  options.out_dir = dir.file(name);
  return train_run(config, build_dataset(config), options);
}

// Σ numerator / Σ denominator of a "ratios" metric, and the mean of a "values" metric, over `lines`.
struct Pooled {
  std::map<std::string, double> num, den, sum;
  size_t n = 0;
};
Pooled pool(const std::vector<json>& lines, const std::string& set, int wording) {
  Pooled p;
  for (const auto& l : lines) {
    if (l["set"] != set || l["wording"] != wording) continue;
    ++p.n;
    for (const auto& [k, v] : l["ratios"].items()) {
      p.num[k] += v[0].get<double>();
      p.den[k] += v[1].get<double>();
    }
    for (const auto& [k, v] : l["values"].items()) p.sum[k] += v.get<double>();
  }
  return p;
}

}  // namespace

TEST_CASE("the default held-out set's per-example lines reproduce metrics.json's eval.*", "[fast][eval-sets][record]") {
  test::TempDir dir;
  const Config config = test::tiny_config();
  const json m = run(config, dir, "r");
  REQUIRE(m["status"] == "ok");
  const auto lines = read_lines(dir.file("r/eval_examples.jsonl"));
  const Pooled p = pool(lines, "", 0);
  REQUIRE(p.n == m["eval"]["examples"].get<size_t>());
  // Example ids index the held-out set in its fixed order; tasks name the example's task.
  std::map<std::string, int> per_task;
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i]["example"] == i);
    ++per_task[lines[i]["task"].get<std::string>()];
  }
  CHECK(per_task == std::map<std::string, int>{{"count", 8}, {"lookup", 8}});
  for (const char* key : {"completion_nll", "completion_token_accuracy", "prompt_nll"}) {
    INFO(key);
    // Pooled per token as the run's figure is; the sums differ from the run's only in their order.
    CHECK(p.num.at(key) / p.den.at(key) == Approx(m["eval"][key].get<double>()).epsilon(1e-12));
  }
  CHECK(p.den.at("completion_nll") == m["eval"]["completion_tokens"].get<double>());
  CHECK(p.den.at("prompt_nll") == m["eval"]["prompt_tokens"].get<double>());
  CHECK(p.sum.at("exact_match") / p.n == m["eval"]["exact_match"].get<double>());
  CHECK(m["decode_seconds"] == 0.0);
  CHECK_FALSE(m.contains("eval_sets"));
}

TEST_CASE("a set with two wordings reports both and their mean, sets never change the run's numbers",
          "[fast][eval-sets][record]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  const json plain = run(config, dir, "plain");
  EvalSetConfig nll;
  nll.name = "cnt";
  nll.kind = EvalSetKind::kNll;
  nll.task = "count";
  nll.wordings = {"{prompt}", "Q: {prompt}"};
  EvalSetConfig mc = nll;
  mc.name = "mc";
  mc.kind = EvalSetKind::kChoice;
  mc.task = "lookup";
  mc.max_examples = 5;
  config.eval.sets = {nll, mc};
  const json m = run(config, dir, "sets");
  REQUIRE(m["status"] == "ok");
  for (const char* key : {"completion_nll", "exact_match", "prompt_nll"}) CHECK(m["eval"][key] == plain["eval"][key]);
  CHECK(m["per_task"] == plain["per_task"]);

  const auto lines = read_lines(dir.file("sets/eval_examples.jsonl"));
  const json& cnt = m["eval"]["cnt"];
  for (const char* key : {"completion_nll", "completion_ppl", "completion_token_accuracy", "exact_match", "prompt_nll"}) {
    INFO(key);
    const double w0 = cnt["wording0"][key].get<double>(), w1 = cnt["wording1"][key].get<double>();
    CHECK(cnt[key].get<double>() == Approx((w0 + w1) / 2).epsilon(1e-12));
  }
  // The prompt differs between wordings, the completion does not.
  CHECK(cnt["wording0"]["prompt_nll"] != cnt["wording1"]["prompt_nll"]);
  for (int w = 0; w < 2; ++w) {
    const Pooled p = pool(lines, "cnt", w);
    CHECK(p.n == 8);
    const json& mw = cnt["wording" + std::to_string(w)];
    CHECK(p.num.at("completion_nll") / p.den.at("completion_nll") == Approx(mw["completion_nll"].get<double>()).epsilon(1e-12));
    const Pooled c = pool(lines, "mc", w);
    CHECK(c.n == 5);
    CHECK(c.sum.at("acc") / 5 == m["eval"]["mc"]["wording" + std::to_string(w)]["acc"].get<double>());
    CHECK(c.sum.at("acc_norm") / 5 == m["eval"]["mc"]["wording" + std::to_string(w)]["acc_norm"].get<double>());
  }
  const json& described = m["eval_sets"]["cnt"];
  CHECK(described["kind"] == "nll");
  CHECK(described["examples"] == 8);
  CHECK(described["wordings"] == json({"{prompt}", "Q: {prompt}"}));
  CHECK(described["status"] == "ok");
  CHECK(m["eval_sets"]["mc"]["kind"] == "choice");
  // The curve's points are the held-out set's only: sets are scored at the end.
  CHECK(test::read_text(dir.file("sets/curve.jsonl")) == test::read_text(dir.file("plain/curve.jsonl")));
}

namespace {

// Token F1 of whitespace words, computed here from the definition (both texts are lowercase letters).
double bag_f1(const std::string& output, const std::string& reference) {
  auto words = [](const std::string& s) {
    std::map<std::string, int> bag;
    std::istringstream in(s);
    for (std::string w; in >> w;) ++bag[w];
    return bag;
  };
  const auto o = words(output), r = words(reference);
  double common = 0, no = 0, nr = 0;
  for (const auto& [w, n] : o) {
    no += n;
    if (r.count(w)) common += std::min(n, r.at(w));
  }
  for (const auto& [w, n] : r) nr += n;
  if (no == 0 && nr == 0) return 1;
  if (common == 0) return 0;
  return 2 * (common / no) * (common / nr) / (common / no + common / nr);
}

}  // namespace

TEST_CASE("a generate set decodes every example and scores it against its reference", "[fast][eval-sets][record]") {
  test::TempDir dir;
  // An answer the tiny model learns in a few dozen steps: "yes" after a, "no" after b.
  std::string train, held_out;
  for (int i = 0; i < 200; ++i) {
    const std::string line = "{\"prompt\": \"" + std::string(i % 2 ? "b" : "a") + std::to_string(i) +
                             "\", \"completion\": \"" + (i % 2 ? "no" : "yes") + "\"}\n";
    (i < 180 ? train : held_out) += line;
  }
  test::write_text(dir.file("train.jsonl"), train);
  test::write_text(dir.file("held_out.jsonl"), held_out);
  Config config = test::tiny_config();
  config.data.train = dir.file("train.jsonl");
  config.data.eval = dir.file("held_out.jsonl");
  config.train.steps = 60;
  config.train.lr = 0.01;
  EvalSetConfig gen;
  gen.name = "gen";
  gen.kind = EvalSetKind::kGenerate;
  gen.file = dir.file("held_out.jsonl");
  gen.max_new_tokens = 6;
  gen.wordings = {"{prompt}", "{prompt} "};
  EvalSetConfig nll = gen;
  nll.name = "tf";
  nll.kind = EvalSetKind::kNll;
  config.eval.sets = {gen, nll};
  const json m = run(config, dir, "r");
  REQUIRE(m["status"] == "ok");
  const auto lines = read_lines(dir.file("r/eval_examples.jsonl"));
  std::map<std::pair<int, int>, json> teacher_forced;
  for (const auto& l : lines) {
    if (l["set"] == "tf") teacher_forced[{l["wording"].get<int>(), l["example"].get<int>()}] = l;
  }
  int generated = 0, exact = 0;
  for (const auto& l : lines) {
    if (l["set"] != "gen") continue;
    ++generated;
    const std::string output = l["output"], reference = l["reference"];
    CHECK(reference == (l["prompt"].get<std::string>()[0] == 'b' ? "no" : "yes"));
    CHECK(l["values"]["f1"].get<double>() == Approx(bag_f1(output, reference)));
    CHECK(l["values"]["exact_match"] == (output == reference ? 1.0 : 0.0));
    // Greedy decoding reproduces the reference and then ends iff every reference
    // token and the end marker are the teacher-forced argmax.
    const json& tf = teacher_forced.at({l["wording"].get<int>(), l["example"].get<int>()});
    CHECK((output == reference && l["stop_reason"] == "eos") == (tf["values"]["exact_match"] == 1));
    exact += output == reference;
  }
  CHECK(generated == 2 * 20);
  CHECK(exact > 0);  // the check above saw both outcomes
  CHECK(m["eval"]["gen"]["exact_match"].get<double>() == Approx(exact / 40.0));
  CHECK(m["eval_sets"]["gen"]["generated_tokens"].get<long>() > 0);
  CHECK(m["decode_seconds"].get<double>() > 0);
  CHECK(m["decode_tokens_per_second"].get<double>() > 0);
}
