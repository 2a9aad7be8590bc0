#pragma once
// One training or evaluation example before tokenization: a list of messages
// with roles. Prompt/completion data is a user message and an assistant
// message; chats have many; plain text is one assistant message.
#include <string>
#include <vector>

#include "harness/core/roles.hpp"

namespace masklab {

struct Message {
  Role role = Role::kUser;   // kSystem, kUser or kAssistant
  std::string content;
  std::string input;         // Alpaca's optional "input", rendered by the template's input wrap
  bool trainable = true;     // false when the data says "weight": 0
};

struct Example {
  std::string task;          // built-in task name or the data file's stem; metrics break down by it
  std::vector<Message> messages;
  std::string origin;        // "file.jsonl:12" or "task:count#7", for error messages
  bool plain_text = false;   // {"text"} data: no template, every token is trained
};

}  // namespace masklab
