// masklab_spm: SentencePiece in a process of its own.
//
// Debian's libsentencepiece bundles protobuf-lite 3.14 and exports its
// symbols; LibTorch loads libprotobuf 3.21. In one process the two bind to
// each other: linked directly, the process crashes before main(); loaded
// with dlopen, SentencePiece's version check lands in the wrong library (and
// RTLD_DEEPBIND breaks libstdc++'s std::cerr). So masklab talks to this small
// program, which links SentencePiece and nothing of LibTorch, over pipes.
//
//   masklab_spm train 'FLAGS'   SentencePieceTrainer::Train(FLAGS)
//   masklab_spm serve MODEL     load MODEL, then answer requests on stdin:
//
// On start, serve writes: i32 status (0 ok, else followed by a message:
// u32 length + bytes) and, when ok, i32 piece_size, bos, eos, pad, unk and
// every piece (u32 length + bytes). Requests: 'E' u32 length + text ->
// u32 n + n * (i32 id, u32 byte offset); 'D' u32 n + n * i32 id -> u32
// length + text. End of input ends the process.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

bool read_exact(void* dst, size_t n) { return std::fread(dst, 1, n, stdin) == n; }
void write_bytes(const void* src, size_t n) { std::fwrite(src, 1, n, stdout); }
template <class T>
void put(T v) { write_bytes(&v, sizeof(T)); }
void put_string(const std::string& s) {
  put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
  write_bytes(s.data(), s.size());
}

int serve(const char* model_path) {
  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.Load(model_path);
  if (!status.ok()) {
    put<std::int32_t>(1);
    put_string(status.ToString());
    std::fflush(stdout);
    return 1;
  }
  put<std::int32_t>(0);
  for (int v : {sp.GetPieceSize(), sp.bos_id(), sp.eos_id(), sp.pad_id(), sp.unk_id()}) put<std::int32_t>(v);
  for (int id = 0; id < sp.GetPieceSize(); ++id) put_string(sp.IdToPiece(id));
  std::fflush(stdout);

  for (char op; read_exact(&op, 1);) {
    std::uint32_t n = 0;
    if (!read_exact(&n, sizeof(n))) return 1;
    if (op == 'E') {
      std::string text(n, '\0');
      if (!read_exact(text.data(), n)) return 1;
      const auto spt = sp.EncodeAsImmutableProto(text);
      put<std::uint32_t>(static_cast<std::uint32_t>(spt.pieces_size()));
      for (const auto& piece : spt.pieces()) {
        put<std::int32_t>(static_cast<std::int32_t>(piece.id()));
        put<std::uint32_t>(piece.begin());
      }
    } else if (op == 'D') {
      std::vector<std::int32_t> ids(n);
      if (!read_exact(ids.data(), n * sizeof(std::int32_t))) return 1;
      std::string text;
      sp.Decode(std::vector<int>(ids.begin(), ids.end()), &text).IgnoreError();
      put_string(text);
    } else {
      return 1;
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode == "serve") return serve(argv[2]);
  if (mode == "train") {
    const auto status = sentencepiece::SentencePieceTrainer::Train(argv[2]);
    if (!status.ok()) {
      std::cerr << status.ToString() << "\n";
      return 1;
    }
    return 0;
  }
  std::cerr << "usage: masklab_spm serve MODEL | masklab_spm train 'FLAGS'\n";
  return 2;
}
