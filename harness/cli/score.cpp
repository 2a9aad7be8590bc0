#include "harness/cli/score.hpp"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/data/data.hpp"
#include "harness/train/model.hpp"
#include "harness/train/run.hpp"

namespace masklab {
namespace {

bool is_completion(Role r) { return r == Role::kAssistant || r == Role::kEos; }
bool is_prompt(Role r) { return r == Role::kUser || r == Role::kSystem; }

// Per-label NLL (T-1) of one example: position t predicts ids[t+1], in fp32.
std::vector<float> label_nll(Transformer& model, const TokenizedExample& ex) {
  const int64_t T = static_cast<int64_t>(ex.ids.size());
  if (T < 2) return {};
  const auto ids = torch::tensor(std::vector<int64_t>(ex.ids.begin(), ex.ids.end())).unsqueeze(0);  // (1, T)
  const auto positions = torch::arange(T, torch::kLong).unsqueeze(0);                              // (1, T)
  const auto hidden = model->forward(ids, positions)[0].narrow(0, 0, T - 1).to(torch::kFloat);     // (T-1, C)
  const auto logits = torch::matmul(hidden, model->head_weight().t());                              // (T-1, V)
  const auto targets = ids[0].narrow(0, 1, T - 1).unsqueeze(1);                                     // (T-1, 1)
  const auto nll = -torch::log_softmax(logits, -1).gather(1, targets).squeeze(1).contiguous();       // (T-1)
  return std::vector<float>(nll.data_ptr<float>(), nll.data_ptr<float>() + (T - 1));
}

nlohmann::json score_line(size_t index, const std::string& task, const TokenizedExample& ex,
                          const std::vector<float>& nll, bool tokens) {
  long prompt_tokens = 0, completion_tokens = 0;
  double prompt_nll = 0, completion_nll = 0;
  nlohmann::json roles = nlohmann::json::array(), per_label = nlohmann::json::array();
  for (size_t t = 0; t < nll.size(); ++t) {
    const Role r = static_cast<Role>(ex.roles[t + 1]);  // the label decides (docs/design.md, invariant 2)
    if (is_completion(r)) {
      ++completion_tokens;
      completion_nll += nll[t];
    } else if (is_prompt(r)) {
      ++prompt_tokens;
      prompt_nll += nll[t];
    }
    roles.push_back(role_name(r));
    per_label.push_back(nll[t]);
  }
  nlohmann::json line = {{"index", index},          {"task", task},
                         {"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                         {"prompt_nll", prompt_nll},       {"completion_nll", completion_nll}};
  if (tokens) {
    line["ids"] = ex.ids;
    line["label_roles"] = roles;
    line["label_nll"] = per_label;
  }
  return line;
}

}  // namespace

void run_score(const Config& config, const ScoreOptions& o) {
  validate(config);
  if (!is_hf_model_dir(config.model.init_from)) {
    throw UserError("MODEL '" + config.model.init_from + "' is not a model folder with config.json");
  }
  const auto tokenizer = make_tokenizer(config.data.tokenizer);
  if (tokenizer->vocab_size() > config.model.vocab_size) {
    throw UserError(fmt::format("data.tokenizer has {} tokens but {}/config.json has vocab_size {}",
                                tokenizer->vocab_size(), config.model.init_from, config.model.vocab_size));
  }
  const ChatTemplate tmpl = load_template(config.data.template_name);
  LoadStats load_stats;
  const auto examples = load_jsonl(o.data, config.data.format, config.data.skip_invalid,
                                   std::filesystem::path(o.data).stem().string(), &load_stats);
  apply_thread_policy(resolve_threads(config));
  Transformer model(config.model, config.model.vocab_size);
  load_parameters(*model, config.model.init_from);
  model->eval();
  torch::NoGradGuard no_grad;
  const int max_len = config.data.max_len > 0 ? config.data.max_len : config.model.max_seq_len;
  std::string lines;
  TokenizeStats stats;
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto ex = tokenize_example(examples[i], tmpl, *tokenizer, max_len,
                                     config.data.truncation == Truncation::kLeft, &stats);
    nlohmann::json line = {{"index", i}, {"task", examples[i].task}, {"skipped", "too long"}};
    if (ex) line = score_line(i, examples[i].task, *ex, label_nll(model, *ex), o.tokens);
    lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(o.out, lines);
}

}  // namespace masklab
