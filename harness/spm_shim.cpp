// A C interface to SentencePiece, built as its own module and loaded with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND). Debian's libsentencepiece carries its
// own copy of protobuf-lite and exports those symbols; linked into the same
// global symbol scope as LibTorch's libprotobuf, the two copies bind to each
// other and the process crashes before main(). Loaded locally and
// deep-bound, each keeps its own. Nothing C++ crosses this boundary.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {
void copy_error(const std::string& message, char* err, size_t errlen) {
  if (err && errlen) {
    std::strncpy(err, message.c_str(), errlen - 1);
    err[errlen - 1] = '\0';
  }
}
}  // namespace

extern "C" {

void* mlspm_load(const char* bytes, size_t n, char* err, size_t errlen) {
  try {
    auto* sp = new sentencepiece::SentencePieceProcessor();
    const auto status = sp->LoadFromSerializedProto(std::string(bytes, n));
    if (!status.ok()) {
      copy_error(status.ToString(), err, errlen);
      delete sp;
      return nullptr;
    }
    return sp;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, errlen);
    return nullptr;
  }
}

void mlspm_free(void* handle) { delete static_cast<sentencepiece::SentencePieceProcessor*>(handle); }

int mlspm_special(void* handle, int which) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  switch (which) {
    case 0: return sp->GetPieceSize();
    case 1: return sp->bos_id();
    case 2: return sp->eos_id();
    case 3: return sp->pad_id();
    case 4: return sp->unk_id();
    default: return -1;
  }
}

// Writes up to `cap` ids and byte offsets; returns how many there are (call
// again with a larger buffer when that exceeds cap), or -1 on error.
int mlspm_encode(void* handle, const char* text, size_t n, int32_t* ids, uint32_t* offsets, int cap) {
  try {
    auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
    const auto spt = sp->EncodeAsImmutableProto(std::string(text, n));
    int count = 0;
    for (const auto& piece : spt.pieces()) {
      if (count < cap) {
        ids[count] = static_cast<int32_t>(piece.id());
        offsets[count] = piece.begin();
      }
      ++count;
    }
    return count;
  } catch (...) {
    return -1;
  }
}

// The piece's text; valid while the model lives.
const char* mlspm_piece(void* handle, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  if (id < 0 || id >= sp->GetPieceSize()) return "";
  return sp->IdToPiece(id).c_str();
}

// Decodes into out (up to cap bytes); returns the full length, or -1.
int mlspm_decode(void* handle, const int32_t* ids, int n, char* out, int cap) {
  try {
    auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
    std::vector<int> v(ids, ids + n);
    std::string text;
    if (!sp->Decode(v, &text).ok()) return -1;
    if (cap > 0) std::memcpy(out, text.data(), std::min<size_t>(text.size(), static_cast<size_t>(cap)));
    return static_cast<int>(text.size());
  } catch (...) {
    return -1;
  }
}

// SentencePieceTrainer::Train with a flag string; returns 0 on success.
int mlspm_train(const char* args, char* err, size_t errlen) {
  try {
    const auto status = sentencepiece::SentencePieceTrainer::Train(args);
    if (!status.ok()) {
      copy_error(status.ToString(), err, errlen);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, errlen);
    return 1;
  }
}

}  // extern "C"
