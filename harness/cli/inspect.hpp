#pragma once
// `masklab inspect`: shows exactly which tokens each strategy trains on, token
// by token, and summarizes the data's roles and lengths. It answers the
// questions that silently wrong masks raise: is the EOS trained, is every
// assistant turn trained, did the template's tokens get the right role?
#include <iosfwd>
#include <string>
#include <vector>

#include "harness/core/config.hpp"

namespace masklab {

struct InspectOptions {
  std::string data;                      // a JSONL file, or "builtin:task1,task2"
  DataFormat format = DataFormat::kAuto;
  std::string template_name = "plain";   // data.template
  std::string tokenizer = "byte";        // data.tokenizer
  std::vector<std::string> strategies;   // specs to show; default full and completion_only
  int n = 3;                             // examples shown
  int max_len = 0;                       // 0: no limit
  Truncation truncation = Truncation::kLeft;
  bool skip_invalid = false;
  bool colour = false;                   // ANSI colours (a terminal) or a plain token|role|weight table
  std::string html_path;                 // also write the examples as a page
};

// Prints the examples and the summary to `out`; throws UserError for bad data.
void run_inspect(const InspectOptions& options, std::ostream& out);

}  // namespace masklab
