// Chat templates (harness/data/chat_template.cpp): a template (a built-in
// name or YAML text) renders messages, which the byte tokenizer then
// tokenizes and truncates (harness/data/data.cpp tokenize_example). Parts
// are NUL-separated: the template, then one part per message whose first
// byte picks its role and weight.
#include <algorithm>

#include "fuzz/fuzz_input.hpp"
#include "harness/core/text.hpp"
#include "harness/data/chat_template.hpp"
#include "harness/data/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  static const auto tokenizer = make_tokenizer("byte");
  const auto parts = fuzz::split_at_nul(data, size);
  fuzz::expect_user_errors([&] {
    const auto names = builtin_template_names();
    const ChatTemplate tmpl = std::find(names.begin(), names.end(), parts[0]) != names.end()
                                  ? load_template(parts[0])
                                  : parse_template(parts[0], "fuzz.yaml");
    Example example;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].empty()) continue;
      static constexpr Role kRoles[] = {Role::kSystem, Role::kUser, Role::kAssistant};
      const auto pick = static_cast<unsigned char>(parts[i][0]);
      example.messages.push_back({kRoles[pick % 3], parts[i].substr(1), "", (pick / 3) % 2 == 0});
    }
    // The data loaders refuse an example without a completion, or with a blank one.
    const auto is_assistant = [](const Message& m) { return m.role == Role::kAssistant; };
    const auto blank_assistant = [](const Message& m) { return m.role == Role::kAssistant && trim(m.content).empty(); };
    if (std::none_of(example.messages.begin(), example.messages.end(), is_assistant) ||
        std::any_of(example.messages.begin(), example.messages.end(), blank_assistant)) {
      return;
    }
    // The input's length picks the row length (0: no limit) and the truncation.
    const int max_len = size % 3 == 0 ? 0 : 4 + static_cast<int>(size % 61);
    TokenizeStats stats;
    tokenize_example(example, tmpl, *tokenizer, max_len, /*truncate_left=*/size % 2 == 0, &stats);
  });
  return 0;
}
