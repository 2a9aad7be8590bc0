#pragma once
// `masklab tokenizer train`: a SentencePiece model trained on a dataset's text.
#include <string>

namespace masklab {

struct TokenizerTrainOptions {
  std::string data;          // JSONL in any supported format, or plain text (one document per line)
  int vocab_size = 8000;
  std::string type = "bpe";  // bpe | unigram
  std::string out;           // the .model file to write (a .vocab file lands beside it)
  std::string user_symbols;  // comma-separated strings kept whole
};

// Trains and writes the model; returns a one-line summary. Throws UserError.
std::string train_tokenizer(const TokenizerTrainOptions& options);

}  // namespace masklab
