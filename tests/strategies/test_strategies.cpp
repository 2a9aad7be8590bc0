// Strategies make weights from label roles: hand-computed expectations.
#include <catch2/catch.hpp>

#include <set>

#include <nlohmann/json.hpp>

#include "harness/train/batching.hpp"
#include "harness/core/errors.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

std::vector<float> weights_of(const std::string& spec, const Batch& b, double progress = 0) {
  const auto w = make_strategy(spec)->weights(LabelView{b.label_role, b.label_flags, progress});
  const auto flat = w.flatten().contiguous();
  return std::vector<float>(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

// Labels given directly: role and flags per position, one row.
LabelView labels(std::vector<Role> roles, std::vector<uint8_t> flags, double progress = 0) {
  std::vector<uint8_t> r;
  for (auto role : roles) r.push_back(static_cast<uint8_t>(role));
  const auto n = static_cast<int64_t>(r.size());
  return LabelView{torch::tensor(r, torch::kUInt8).view({1, n}), torch::tensor(flags, torch::kUInt8).view({1, n}),
                   progress};
}

std::vector<float> apply(const std::string& spec, const LabelView& view) {
  const auto flat = make_strategy(spec)->weights(view).flatten().contiguous();
  return std::vector<float>(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

std::string error_of(const std::string& spec) {
  return test::user_error_of([&] { make_strategy(spec); });
}

}  // namespace

TEST_CASE("the weight at position t is the role of token t+1 (the label decides)", "[fast][strategies][labels]") {
  // <bos> a b \n = > ' ' c d <eos>  with the plain template
  const auto ex = test::byte_example("ab", "cd");
  REQUIRE(ex.ids.size() == 10);
  const Batch b = make_padded_batch({&ex}, /*pad_id=*/256);
  REQUIRE(b.input_ids.size(1) == 9);
  // Input at position 5 is '>' and predicts ' ', a template token: not trained.
  // Input at position 6 is ' ' and predicts 'c', the first completion token: trained.
  const std::vector<float> completion_only = {0, 0, 0, 0, 0, 0, 1, 1, 1};
  CHECK(weights_of("completion_only", b) == completion_only);
  // The last label is the EOS that closes the completion; completion_only trains it.
  CHECK(b.label_role[0][8].item<int>() == static_cast<int>(Role::kEos));
  CHECK(b.targets[0][8].item<int>() == 258);
  CHECK(weights_of("full", b) == std::vector<float>(9, 1.0f));
}

TEST_CASE("each strategy's weights match hand-computed values", "[fast][strategies]") {
  const auto ex = test::byte_example("ab", "cd");
  const Batch b = make_padded_batch({&ex}, 256);
  // labels: a b (user) \n = > ' ' (template) c d (assistant) <eos>
  CHECK(weights_of("weighted:0.25", b) == std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 1, 1, 1});
  CHECK(weights_of("weighted:0.25,template=zero", b) == std::vector<float>{0.25f, 0.25f, 0, 0, 0, 0, 1, 1, 1});
  CHECK(weights_of("completion_only:template=completion", b) == std::vector<float>{0, 0, 1, 1, 1, 1, 1, 1, 1});
  CHECK(weights_of("wit:0.5,2", b) == std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 2, 2, 2});
  CHECK(weights_of("scheduled:1,0", b, 0.0) == weights_of("full", b));
  CHECK(weights_of("scheduled:1,0", b, 1.0) == weights_of("completion_only", b));
  CHECK(weights_of("scheduled:1,0,linear", b, 0.25)[0] == Approx(0.75));
  CHECK(weights_of("scheduled:1,0,cosine", b, 0.5)[0] == Approx(0.5));
  CHECK(weights_of("scheduled:0,1,cosine", b, 0.25)[0] == Approx(0.5 * (1 - std::cos(M_PI * 0.25))));
}

TEST_CASE("padding never carries weight", "[fast][strategies]") {
  const auto a = test::byte_example("ab", "cd");
  const auto longer = test::byte_example("abcdef", "cdefgh");
  const Batch b = make_padded_batch({&a, &longer}, 256);
  const auto w = make_strategy("full")->weights(LabelView{b.label_role, b.label_flags, 0});
  CHECK(w[0].sum().item<float>() == 9.0f);  // the short row's 9 labels only
  CHECK(w[1].sum().item<float>() == static_cast<float>(longer.ids.size() - 1));
}

TEST_CASE("multi-turn roles: last_turn_only, eos policy, system weight, per-message weight", "[fast][strategies]") {
  using R = Role;
  const uint8_t L = kFlagLastTurn, M = kFlagMessageMasked;
  // system, user, assistant(turn 1) + eos, user, assistant(final) + eos
  const auto view = labels({R::kSystem, R::kUser, R::kAssistant, R::kEos, R::kTemplate, R::kUser, R::kAssistant, R::kEos},
                           {0, 0, 0, 0, 0, 0, L, L});
  CHECK(apply("completion_only", view) == std::vector<float>{0, 0, 1, 1, 0, 0, 1, 1});
  CHECK(apply("assistant_only", view) == apply("completion_only", view));
  CHECK(apply("last_turn_only", view) == std::vector<float>{0, 0, 0, 0, 0, 0, 1, 1});
  // eos=last: the first turn's end marker weighs as prompt.
  CHECK(apply("completion_only:eos=last", view) == std::vector<float>{0, 0, 1, 0, 0, 0, 1, 1});
  CHECK(apply("weighted:0.5,eos=last", view) == std::vector<float>{0.5f, 0.5f, 1, 0.5f, 0.5f, 0.5f, 1, 1});
  CHECK(apply("weighted:0.5,system=0", view) == std::vector<float>{0, 0.5f, 1, 1, 0.5f, 0.5f, 1, 1});
  // A message with "weight": 0 carries no loss under any strategy.
  const auto masked = labels({R::kUser, R::kAssistant, R::kEos, R::kUser, R::kAssistant, R::kEos}, {0, M, M, 0, L, L});
  CHECK(apply("completion_only", masked) == std::vector<float>{0, 0, 0, 0, 1, 1});
  CHECK(apply("full", masked) == std::vector<float>{1, 0, 0, 1, 1, 1});
}

TEST_CASE("specs parse case-insensitively into canonical form", "[fast][strategies][registry]") {
  CHECK(make_strategy("Weighted:0.10")->spec() == "weighted:0.1");
  CHECK(make_strategy("PLW:1e-2")->spec() == "weighted:0.01");
  CHECK(make_strategy(" COMPLETION_ONLY ")->spec() == "completion_only");
  CHECK(make_strategy("scheduled:1,0")->spec() == "scheduled:1,0,linear");
  CHECK(make_strategy("weighted:0.1,system=0")->spec() == "weighted:0.1,system=0");
  CHECK(make_strategy("weighted:lambda=0.3")->spec() == "weighted:0.3");
  CHECK(make_strategy("full:template=zero,eos=last")->spec() == "full:template=zero,eos=last");
}

TEST_CASE("bad specs name the problem and list the valid strategies", "[fast][strategies][registry][errors]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"weighted:abc", "lambda must be a non-negative number, got 'abc'"},
      {"weighted:-1", "lambda must be a non-negative number, got '-1'"},
      {"weighted:nan", "non-negative number"},
      {"nosuch", "unknown strategy 'nosuch'"},
      {"completion_only,eos=last", "arguments follow a colon: write completion_only:eos=last"},
      {"weighted", "weighted needs weighted:<lambda>"},
      {"wit:1", "wit needs"},
      {"wit:1,2,3", "wit takes at most 2 argument"},
      {"weighted:0.1,0.2", "'0.2' is a positional value for system, which must be named: write system=0.2"},
      {"Weighted:0.1,0.2,lambda=1", "must be named: write system=0.2"},
      {"scheduled:1,0,square", "shape must be one of"},
      {"full:foo=1", "unknown parameter 'foo'"},
      {"weighted:0.1,system=0,system=1", "given twice"},
      {"weighted:0.1,lambda=0.2", "given twice"},
      {"completion_only:eos=sometimes", "eos must be all or last"},
      {"", "empty spec"},
  };
  for (const auto& [spec, problem] : cases) {
    INFO(spec);
    const std::string msg = error_of(spec);
    CHECK_THAT(msg, Catch::Contains(problem));
    CHECK_THAT(msg, Catch::Contains("valid strategies: full, completion_only"));
    CHECK(msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("a duplicate name in the registry is a hard error", "[fast][strategies][registry]") {
  const auto& entries = StrategyRegistry::instance().entries();
  auto entry = [&](const std::string& name) {
    for (const auto& e : entries) {
      if (e.name == name) return e;
    }
    FAIL("no strategy " << name);
    return entries.front();
  };
  CHECK_THROWS_AS(StrategyRegistry({entry("full"), entry("full")}), std::logic_error);
  auto renamed = entry("weighted");
  renamed.name = "FULL";  // case-insensitive clash
  CHECK_THROWS_AS(StrategyRegistry({entry("full"), renamed}), std::logic_error);
  auto aliased = entry("weighted");
  aliased.aliases = {"Assistant_Only"};  // an alias clashing with another entry's alias
  CHECK_THROWS_AS(StrategyRegistry({entry("completion_only"), aliased}), std::logic_error);
  CHECK_NOTHROW(StrategyRegistry::instance());
}

TEST_CASE("role_weights_record gives every registered strategy's weights at the first and the last step",
          "[fast][strategies][record]") {
  using nlohmann::json;
  auto weights = [](double prompt, double completion, double earlier, double system) {
    return json{{"prompt", prompt}, {"completion", completion}, {"earlier_completion", earlier}, {"system", system}};
  };
  auto record = [](json start, json end, const char* schedule, const char* template_as = "prompt",
                   const char* eos = "all") {
    return json{{"start", std::move(start)}, {"end", std::move(end)}, {"schedule", schedule},
                {"template", template_as}, {"eos", eos}};
  };
  // spec -> the record by hand; the unset system weight is recorded as the prompt weight.
  const std::vector<std::pair<std::string, json>> cases = {
      {"full", record(weights(1, 1, 1, 1), weights(1, 1, 1, 1), "constant")},
      {"completion_only", record(weights(0, 1, 1, 0), weights(0, 1, 1, 0), "constant")},
      {"assistant_only:template=zero,eos=last",
       record(weights(0, 1, 1, 0), weights(0, 1, 1, 0), "constant", "zero", "last")},
      {"last_turn_only", record(weights(0, 1, 0, 0), weights(0, 1, 0, 0), "constant")},
      {"weighted:0.1", record(weights(0.1, 1, 1, 0.1), weights(0.1, 1, 1, 0.1), "constant")},
      {"weighted:0.1,system=0.5,template=completion",
       record(weights(0.1, 1, 1, 0.5), weights(0.1, 1, 1, 0.5), "constant", "completion")},
      {"wit:0.25,2", record(weights(0.25, 2, 2, 0.25), weights(0.25, 2, 2, 0.25), "constant")},
      {"scheduled:1,0", record(weights(1, 1, 1, 1), weights(0, 1, 1, 0), "linear")},
      {"scheduled:0.2,0.8,cosine", record(weights(0.2, 1, 1, 0.2), weights(0.8, 1, 1, 0.8), "cosine")},
  };
  std::set<std::string> covered;
  for (const auto& [spec, expected] : cases) {
    INFO(spec);
    const auto strategy = make_strategy(spec);
    const json got = role_weights_record(*strategy);
    INFO(got.dump());
    CHECK(got == expected);
    covered.insert(strategy->spec().substr(0, strategy->spec().find(':')));
  }
  // A strategy added to the registry needs its row here.
  for (const auto& entry : StrategyRegistry::instance().entries()) {
    INFO(entry.name);
    CHECK(covered.count(entry.name) == 1);
  }
}

TEST_CASE("the option names of specs are those of run records", "[fast][strategies][record]") {
  // Every non-default option value reads back the same in the canonical spec and in the record.
  for (const auto& template_as : kTemplateAsNames) {
    for (const auto& eos : kEosPolicyNames) {
      const std::string spec = "full:template=" + std::string(template_as) + ",eos=" + std::string(eos);
      INFO(spec);
      const auto record = role_weights_record(*make_strategy(spec));
      CHECK(record["template"] == std::string(template_as));
      CHECK(record["eos"] == std::string(eos));
    }
  }
  CHECK(make_strategy("full:template=zero,eos=last")->options().template_as == StrategyOptions::TemplateAs::kZero);
  CHECK(make_strategy("full:eos=last")->options().eos == StrategyOptions::EosPolicy::kLast);
  CHECK_THAT(error_of("full:template=nope"), Catch::Contains("template must be prompt, completion or zero, got 'nope'"));
  CHECK_THAT(error_of("full:eos=x"), Catch::Contains("options for all: template=prompt|completion|zero, eos=all|last"));
}
