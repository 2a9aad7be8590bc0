// `masklab sweep --until-ci`: seeds added in rounds until every pairwise
// interval is narrow enough, or --max-seeds; resumable; the rule recorded.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include "harness/cli/until_ci.hpp"
#include "harness/core/run_record.hpp"
#include "reports/report.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

reports::RunRow run_row(const std::string& strategy, int seed, double value, const std::string& status = "ok") {
  reports::RunRow row;
  row.id = strategy + std::to_string(seed);
  row.factors = {{"strategy", strategy}, {"seed", std::to_string(seed)}};
  row.status = status;
  row.metrics = {{"status", status}, {"eval", {{"exact_match", value}}}};
  return row;
}

reports::ReportInputs inputs_of(std::vector<reports::RunRow> runs) {
  reports::ReportInputs inputs;
  inputs.sweep.factors = {"strategy", "seed"};
  inputs.runs = std::move(runs);
  return inputs;
}

const char* const kTinySpec =
    "base:\n"
    "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 64}\n"
    "  train: {steps: 6, batch_size: 8, eval_every: 0, warmup_steps: 2}\n"
    "  data: {tasks: [lookup], train_size: 40, eval_size: 16, train_eval_size: 8}\n"
    "  eval: {samples: 0}\n"
    "grid:\n"
    "  strategy: [full, completion_only]\n"
    "  seed: [1, 2]\n";

}  // namespace

TEST_CASE("until-ci: the widest half-width is the paired t interval's, over every pair of strategies",
          "[fast][until_ci]") {
  // a − b per seed: 0.1, 0.3, 0.2 -> mean 0.2, sd 0.1; scipy.stats.t.ppf(0.975, 2) = 4.302652729749464.
  const double expected = 4.302652729749464 * 0.1 / std::sqrt(3.0);
  const auto check = widest_interval(inputs_of({run_row("a", 1, 0.6), run_row("a", 2, 0.8), run_row("a", 3, 0.7),
                                                run_row("b", 1, 0.5), run_row("b", 2, 0.5), run_row("b", 3, 0.5),
                                                run_row("c", 1, 0.5), run_row("c", 2, 0.5), run_row("c", 3, 0.5)}),
                                     "eval.exact_match");
  CHECK(check.metric_seen);
  CHECK(check.pairs == 3);  // a-b, a-c, b-c
  CHECK(check.undefined == 0);
  CHECK(check.widest_half_width == Approx(expected).epsilon(1e-9));
  CHECK(check.widest == "a vs b");  // a-c is as wide: the first pair of the widest is named

  // A failed run drops its seed from the pairs it is in: b-c keeps 3 seeds, a-b only 1 -> undefined.
  const auto failed = widest_interval(inputs_of({run_row("a", 1, 0.6), run_row("a", 2, 0.8, "failed"),
                                                 run_row("a", 3, 0.7, "failed"), run_row("b", 1, 0.5),
                                                 run_row("b", 2, 0.5), run_row("b", 3, 0.5)}),
                                      "eval.exact_match");
  CHECK(failed.undefined == 1);
  CHECK(std::isnan(failed.widest_half_width));
  CHECK_FALSE(widest_interval(inputs_of({run_row("a", 1, 0.6)}), "eval.f1").metric_seen);
}

TEST_CASE("until-ci: a bad rule is one line and exit 2", "[fast][until_ci][errors]") {
  CHECK(test::user_error_of([] { parse_until_ci("eval.exact_match"); }).find("METRIC:HALF_WIDTH") != std::string::npos);
  CHECK(test::user_error_of([] { parse_until_ci("eval.exact_match:0"); }).find("positive") != std::string::npos);
  CHECK(test::user_error_of([] { parse_until_ci("eval.exact_match:0.1x"); }).find("METRIC:HALF_WIDTH") !=
        std::string::npos);
  CHECK(parse_until_ci("eval.gen.f1:0.05").metric == "eval.gen.f1");

  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec);
  const auto shard = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + dir.file("o") +
                                       " --until-ci eval.exact_match:0.1 --shard 1/2");
  CHECK(shard.exit_code == 2);
  CHECK(shard.out.find("--shard") != std::string::npos);
  const auto below = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + dir.file("o") +
                                       " --until-ci eval.exact_match:0.1 --max-seeds 1");
  CHECK(below.exit_code == 2);
  CHECK(below.out.find("--max-seeds 1") != std::string::npos);
  const auto alone = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + dir.file("o") + " --max-seeds 3");
  CHECK(alone.exit_code == 2);
  test::write_text(dir.file("noseed.yaml"), std::string(kTinySpec).substr(0, std::string(kTinySpec).find("  seed:")));
  const auto noseed = test::run_masklab("sweep " + dir.file("noseed.yaml") + " --out " + dir.file("o") +
                                        " --until-ci eval.exact_match:0.1");
  CHECK(noseed.exit_code == 2);
  CHECK(noseed.out.find("no `seed` factor") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.file("o")));
}

TEST_CASE("until-ci stops by its rule, respects --max-seeds and resumes without rerunning finished runs",
          "[slow][until_ci]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec);
  const std::string spec = dir.file("s.yaml");

  // A half-width no interval exceeds: the spec's own seeds decide, one round.
  const std::string wide = dir.file("wide");
  const auto first = test::run_masklab("sweep " + spec + " --out " + wide + " --jobs 2 --until-ci eval.completion_nll:100");
  INFO(first.out);
  REQUIRE(first.exit_code == 0);
  const auto wide_rule = read_json_file(wide + "/sweep.json")["until_ci"];
  CHECK(wide_rule["stopped_by"] == "half_width");
  CHECK(wide_rule["seeds"] == 2);
  CHECK(read_json_file(wide + "/sweep.json")["runs"].size() == 4);

  // A half-width no interval reaches: seeds are added one per round up to --max-seeds.
  const std::string tight = dir.file("tight");
  const std::string command =
      "sweep " + spec + " --out " + tight + " --jobs 2 --until-ci eval.completion_nll:1e-9 --max-seeds 4";
  const auto second = test::run_masklab(command);
  INFO(second.out);
  REQUIRE(second.exit_code == 0);
  const auto manifest = read_json_file(tight + "/sweep.json");
  CHECK(manifest["until_ci"]["stopped_by"] == "max_seeds");
  CHECK(manifest["until_ci"]["seeds"] == 4);
  CHECK(manifest["until_ci"]["rounds"] == 3);
  REQUIRE(manifest["runs"].size() == 8);

  // The recorded widest half-width, recomputed from the run records.
  std::map<std::string, double> nll;  // "strategy/seed" -> eval.completion_nll
  for (const auto& run : manifest["runs"]) {
    const auto m = read_json_file(tight + "/" + run["dir"].get<std::string>() + "/metrics.json");
    nll[m["strategy"].get<std::string>() + "/" + std::to_string(m["seed"].get<int>())] = m["eval"]["completion_nll"];
  }
  std::vector<double> d;
  for (int seed = 1; seed <= 4; ++seed) {
    d.push_back(nll["full/" + std::to_string(seed)] - nll["completion_only/" + std::to_string(seed)]);
  }
  const double mean = (d[0] + d[1] + d[2] + d[3]) / 4;
  double ss = 0;
  for (double x : d) ss += (x - mean) * (x - mean);
  const double t975_df3 = 3.182446305284263;  // scipy.stats.t.ppf(0.975, 3)
  CHECK(manifest["until_ci"]["widest_half_width"].get<double>() == Approx(t975_df3 * std::sqrt(ss / 3) / 2).epsilon(1e-9));

  // An interrupted round leaves its unfinished runs without metrics.json: rerunning the
  // command runs those alone, and every other record stays as it was, byte for byte.
  std::string victim, kept;
  for (const auto& run : manifest["runs"]) {
    if (run["factors"]["seed"] == "4" && victim.empty()) victim = tight + "/" + run["dir"].get<std::string>();
    else if (kept.empty()) kept = tight + "/" + run["dir"].get<std::string>();
  }
  const std::string kept_before = test::read_text(kept + "/metrics.json");
  const std::string victim_before = test::read_text(victim + "/metrics.json");
  fs::remove(victim + "/metrics.json");
  const auto third = test::run_masklab(command);
  INFO(third.out);
  REQUIRE(third.exit_code == 0);
  CHECK(third.out.find("8 runs, 7 done, 1 to run") != std::string::npos);
  // The rounds before it are all done: each is checked, none runs anything.
  CHECK(third.out.find("4 runs, 4 done, 0 to run") != std::string::npos);
  CHECK(third.out.find("6 runs, 6 done, 0 to run") != std::string::npos);
  CHECK(test::read_text(kept + "/metrics.json") == kept_before);
  CHECK(test::comparable_metrics(read_json_file(victim + "/metrics.json"), false) ==
        test::comparable_metrics(nlohmann::json::parse(victim_before), false));
  CHECK(read_json_file(tight + "/sweep.json")["until_ci"]["stopped_by"] == "max_seeds");
}

TEST_CASE("until-ci interrupted by SIGINT in its second round resumes where it stopped", "[slow][until_ci]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec);
  const std::string out = dir.file("out");
  const std::vector<std::string> args = {"sweep", dir.file("s.yaml"), "--out", out,
                                         "--until-ci", "eval.completion_nll:1e-9", "--max-seeds", "4"};
  // Interrupted once round 2 (seed 3) is listed in sweep.json.
  const auto killed = test::interrupt_masklab_when(args, dir.file("log"), [&] {
    const auto text = test::read_text(out + "/sweep.json");  // "" while absent
    return text.find("\"seed\": \"3\"") != std::string::npos;
  });
  INFO(killed.out);
  CHECK(killed.exit_code == 130);
  std::map<std::string, std::string> finished;  // run dir -> its metrics.json, as the interrupt left them
  for (const auto& entry : fs::directory_iterator(out + "/runs")) {
    const std::string record = entry.path().string() + "/metrics.json";
    if (fs::exists(record)) finished[entry.path().string()] = test::read_text(record);
  }
  CHECK(finished.size() >= 4);  // round 1 was done

  std::string command = "";
  for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
  const auto resumed = test::run_masklab(command);
  INFO(resumed.out);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.out.find("4 runs, 4 done, 0 to run") != std::string::npos);
  for (const auto& [run, record] : finished) CHECK(test::read_text(run + "/metrics.json") == record);
  const auto manifest = read_json_file(out + "/sweep.json");
  CHECK(manifest["runs"].size() == 8);
  CHECK(manifest["until_ci"]["stopped_by"] == "max_seeds");
}
