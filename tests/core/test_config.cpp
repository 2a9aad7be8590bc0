// Config: one typed struct; YAML and --set fill it; errors name the key.
#include <catch2/catch.hpp>

#include <algorithm>

#include <yaml-cpp/yaml.h>

#include "harness/core/config.hpp"
#include "harness/core/errors.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("YAML sections and --set overrides fill the typed config", "[fast][config]") {
  test::TempDir dir;
  test::write_text(dir.file("c.yaml"),
                   "strategy: weighted:0.1\n"
                   "train:\n  steps: 7\n  lr: 0.01\n"
                   "model:\n  mlp: gelu\n  tie_embeddings: false\n"
                   "data:\n  tasks: [count, add]\n");
  Config c;
  load_config_file(c, dir.file("c.yaml"));
  apply_override(c, "train.batch_size=5");
  apply_override(c, "data.tasks=reverse,sort");
  apply_override(c, "loss.normalization=sequence");
  CHECK(c.strategy == "weighted:0.1");
  CHECK(c.train.steps == 7);
  CHECK(c.train.lr == 0.01);
  CHECK(c.train.batch_size == 5);
  CHECK(c.model.mlp == MlpKind::kGelu);
  CHECK_FALSE(c.model.tie_embeddings);
  CHECK(c.data.tasks == std::vector<std::string>{"reverse", "sort"});
  CHECK(c.loss.normalization == Normalization::kSequence);
}

TEST_CASE("the resolved config round-trips through config.yaml exactly", "[fast][config]") {
  Config c;
  c.train.lr = 0.003;
  c.model.dropout = 0.1;
  c.data.tasks = {"add"};
  c.strategy = "scheduled:1,0,cosine";
  const std::string yaml = to_yaml(c);
  CHECK_THAT(yaml, Catch::Contains("lr: 0.003\n"));
  Config back;
  apply_yaml(back, YAML::Load(yaml), "config.yaml");
  CHECK(to_yaml(back) == yaml);
}

TEST_CASE("unknown keys and wrong types are errors that name the key", "[fast][config][errors]") {
  Config c;
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "train.stpes=3"); }),
             Catch::Contains("unknown config key 'train.stpes'") && Catch::Contains("steps"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "train.steps=abc"); }),
             Catch::Contains("'train.steps' expects integer, got 'abc'"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "train.steps=1.5"); }), Catch::Contains("train.steps"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "model.tie_embeddings=maybe"); }),
             Catch::Contains("model.tie_embeddings"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "nokey"); }), Catch::Contains("expected section.key=value"));

  test::TempDir dir;
  test::write_text(dir.file("bad.yaml"), "train:\n  steps: 3\n  warmup: 2\n");
  CHECK_THAT(test::user_error_of([&] { load_config_file(c, dir.file("bad.yaml")); }),
             Catch::Contains("bad.yaml:3: unknown config key 'train.warmup'"));
  test::write_text(dir.file("broken.yaml"), "train:\n  steps: [3\n");
  CHECK_THAT(test::user_error_of([&] { load_config_file(c, dir.file("broken.yaml")); }),
             Catch::Contains("broken.yaml:") && Catch::Contains("invalid YAML"));
}

TEST_CASE("a key given twice in a config file is an error naming file:line and the key", "[fast][config][errors]") {
  test::TempDir dir;
  Config c;
  auto error_of = [&](const std::string& name, const std::string& text) {
    test::write_text(dir.file(name), text);
    return test::user_error_of([&] { load_config_file(c, dir.file(name)); });
  };
  CHECK(error_of("a.yaml", "train: {steps: 3, steps: 4}\n") == dir.file("a.yaml") + ":1: duplicate key 'steps'");
  CHECK(error_of("b.yaml", "train:\n  steps: 3\nseed: 1\ntrain:\n  lr: 0.1\n") ==
        dir.file("b.yaml") + ":4: duplicate key 'train'");
  // The dotted and the nested spelling name one key.
  CHECK(error_of("c.yaml", "train:\n  lr: 0.1\ntrain.lr: 0.2\n") == dir.file("c.yaml") + ":3: duplicate key 'train.lr'");
  CHECK(error_of("d.yaml", "train: {lr: 0.1}\nmodel: {d_model: 64}\n").empty());

  // Through the CLI: one line, exit status 2.
  const auto r = test::run_masklab("config --config " + dir.file("a.yaml"));
  INFO(r.out);
  CHECK(r.exit_code == 2);
  CHECK(r.out == "masklab: error: " + dir.file("a.yaml") + ":1: duplicate key 'steps'\n");
}

TEST_CASE("every number in the config is finite", "[fast][config][errors]") {
  Config c;
  for (const char* text : {".inf", "-.inf", ".Inf", "+.INF", ".nan", ".NaN", "inf", "nan", "-inf", "1e999", "abc", "[1]"}) {
    const std::string shown = text[0] == '[' ? "a list" : text;
    CHECK(test::user_error_of([&] { apply_override(c, std::string("train.lr=") + text); }) ==
          "--set train.lr: config key 'train.lr' expects a finite number, got '" + shown + "'");
  }
  CHECK(c.train.lr == Config().train.lr);

  test::TempDir dir;
  test::write_text(dir.file("c.yaml"), "model:\n  dropout: 0.1\ntrain:\n  lr: .inf\n");
  CHECK(test::user_error_of([&] { load_config_file(c, dir.file("c.yaml")); }) ==
        dir.file("c.yaml") + ":4: config key 'train.lr' expects a finite number, got '.inf'");
  test::write_text(dir.file("d.yaml"), "data: {eval_fraction: .nan}\n");
  CHECK(test::user_error_of([&] { load_config_file(c, dir.file("d.yaml")); }) ==
        dir.file("d.yaml") + ":1: config key 'data.eval_fraction' expects a finite number, got '.nan'");
  apply_override(c, "train.lr=1e-3");
  CHECK(c.train.lr == 1e-3);
}

TEST_CASE("cross-field rules are checked", "[fast][config][errors]") {
  Config c;
  c.model.d_model = 30;
  c.model.n_heads = 4;
  CHECK_THAT(test::user_error_of([&] { validate(c); }), Catch::Contains("model.n_heads"));
  CHECK_NOTHROW(validate(Config()));
}

TEST_CASE("enumerated settings parse from their name table and errors list the names", "[fast][config][errors]") {
  Config c;
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "loss.normalization=mean"); }),
             Catch::Contains("'loss.normalization' expects weight_sum | token_count | sequence, got 'mean'"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "train.device=tpu"); }),
             Catch::Contains("'train.device' expects auto | cpu | cuda | cuda:N, got 'tpu'"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "train.device=cuda:x"); }), Catch::Contains("train.device"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "model.mlp=relu"); }),
             Catch::Contains("'model.mlp' expects swiglu | gelu, got 'relu'"));
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "data.truncation=right"); }),
             Catch::Contains("'data.truncation' expects left | skip"));
  // Aliases parse; the resolved config writes the canonical name.
  apply_override(c, "data.format=messages");
  CHECK(c.data.format == DataFormat::kChat);
  apply_override(c, "train.device=cuda:3");
  CHECK(c.train.device == DeviceSetting{DeviceKind::kCuda, 3});
  const std::string yaml = to_yaml(c);
  CHECK_THAT(yaml, Catch::Contains("format: chat\n") && Catch::Contains("device: cuda:3\n"));
  // Every name in every table reads back to its value.
  for (const auto& [value, name] : EnumNames<Normalization>::kNames) CHECK(enum_from_name<Normalization>(name) == value);
  for (const auto& [value, name] : EnumNames<DataFormat>::kNames) CHECK(enum_from_name<DataFormat>(name) == value);
}

TEST_CASE("eval.sets: every key read, written by to_yaml and read back, none by default", "[fast][config][eval-sets]") {
  CHECK(to_yaml(Config{}).find("sets") == std::string::npos);  // no sets: config.yaml as before
  test::TempDir dir;
  test::write_text(dir.file("c.yaml"),
                   "eval:\n"
                   "  sets:\n"
                   "    - {name: mc, kind: choice, task: reverse, max_examples: 5}\n"
                   "    - name: gen\n"
                   "      kind: generate\n"
                   "      file: data/gen.jsonl\n"
                   "      template: chatml\n"
                   "      wordings: [\"{prompt}\", \"Question: {prompt}\\nAnswer:\"]\n"
                   "      max_new_tokens: 12\n"
                   "      temperature: 0.7\n"
                   "      top_p: 0.9\n"
                   "      seed: 4\n"
                   "      stop: [\"\\n\"]\n");
  Config c;
  load_config_file(c, dir.file("c.yaml"));
  REQUIRE(c.eval.sets.size() == 2);
  const EvalSetConfig& mc = c.eval.sets[0];
  CHECK(mc.name == "mc");
  CHECK(mc.kind == EvalSetKind::kChoice);
  CHECK(mc.task == "reverse");
  CHECK(mc.file.empty());
  CHECK(mc.max_examples == 5);
  CHECK(mc.wordings == std::vector<std::string>{"{prompt}"});
  CHECK(mc.origin == dir.file("c.yaml") + ":3");
  const EvalSetConfig& gen = c.eval.sets[1];
  CHECK(gen.kind == EvalSetKind::kGenerate);
  CHECK(gen.file == "data/gen.jsonl");
  CHECK(gen.template_name == "chatml");
  CHECK(gen.wordings == std::vector<std::string>{"{prompt}", "Question: {prompt}\nAnswer:"});
  CHECK(gen.max_new_tokens == 12);
  CHECK(gen.temperature == 0.7);
  CHECK(gen.top_p == 0.9);
  CHECK(gen.seed == 4);
  CHECK(gen.stop == std::vector<std::string>{"\n"});
  CHECK(gen.origin == dir.file("c.yaml") + ":4");

  const std::string yaml = to_yaml(c);
  Config back;
  apply_yaml(back, YAML::Load(yaml), "config.yaml");
  CHECK(to_yaml(back) == yaml);
  REQUIRE(back.eval.sets.size() == 2);
  CHECK(back.eval.sets[1].wordings == gen.wordings);
  CHECK(back.eval.sets[1].temperature == 0.7);
  // A choice set writes no decoding options (they would not read back).
  CHECK(YAML::Load(yaml)["eval"]["sets"][0]["max_new_tokens"].IsDefined() == false);
  const auto keys = config_keys();
  CHECK(std::any_of(keys.begin(), keys.end(), [](const ConfigKeyHelp& k) {
    return k.key == "eval.sets" && k.help.find("not on the curve") != std::string::npos;
  }));
}

TEST_CASE("eval.sets errors name file:line and the set's key", "[fast][config][eval-sets][errors]") {
  test::TempDir dir;
  auto error_of = [&](const std::string& sets) {
    test::write_text(dir.file("c.yaml"), "train: {steps: 3}\neval:\n  sets:\n" + sets);
    Config c;
    return test::user_error_of([&] { load_config_file(c, dir.file("c.yaml")); });
  };
  const std::string at4 = dir.file("c.yaml") + ":4: eval.sets[0].";
  CHECK_THAT(error_of("    - {name: a, kind: nll, task: sort, colour: red}\n"),
             Catch::StartsWith(at4 + "colour: unknown key"));
  CHECK_THAT(error_of("    - {name: a, kind: essay, task: sort}\n"),
             Catch::StartsWith(at4 + "kind: unknown kind 'essay'") && Catch::Contains("nll | generate | choice"));
  CHECK_THAT(error_of("    - {name: A-1, kind: nll, task: sort}\n"), Catch::StartsWith(at4 + "name: 'A-1' must match"));
  CHECK_THAT(error_of("    - {name: exact_match, kind: nll, task: sort}\n"),
             Catch::StartsWith(at4 + "name: 'exact_match' is a metric of the default held-out set"));
  CHECK_THAT(error_of("    - {name: a, kind: nll, task: sort}\n    - {name: a, kind: choice, task: sort}\n"),
             Catch::StartsWith(dir.file("c.yaml") + ":5: eval.sets[1].name: duplicate set name 'a'"));
  CHECK_THAT(error_of("    - {name: a, kind: nll, task: sort, file: x.jsonl}\n"),
             Catch::StartsWith(at4 + "file: give exactly one of task and file"));
  CHECK_THAT(error_of("    - {name: a, kind: nll}\n"), Catch::StartsWith(at4 + "task: give exactly one of task and file"));
  CHECK_THAT(error_of("    - {name: a, kind: nll, task: sort, wordings: [\"Q: {prompt}\", \"Q:\"]}\n"),
             Catch::StartsWith(at4 + "wordings: 'Q:' does not hold {prompt}"));
  CHECK_THAT(error_of("    - {name: a, kind: choice, task: sort, max_new_tokens: 8}\n"),
             Catch::StartsWith(at4 + "max_new_tokens: applies to generate sets only, not to a choice set"));
  CHECK_THAT(error_of("    - {name: a, kind: generate, task: sort, max_new_tokens: 0}\n"),
             Catch::StartsWith(at4 + "max_new_tokens: must be positive"));
  CHECK_THAT(error_of("    - {name: a, kind: generate, task: sort, top_p: 0}\n"), Catch::StartsWith(at4 + "top_p: must be in (0, 1]"));
  CHECK_THAT(error_of("    - {name: a, kind: nll, task: sort, max_examples: x}\n"),
             Catch::StartsWith(at4 + "max_examples: expects an integer"));
  CHECK_THAT(error_of("    - just a string\n"), Catch::StartsWith(at4.substr(0, at4.size() - 1) + ": expects a mapping"));
  Config c;
  CHECK_THAT(test::user_error_of([&] { apply_override(c, "eval.sets=3"); }),
             Catch::Contains("eval.sets: expects a list of sets"));
}
