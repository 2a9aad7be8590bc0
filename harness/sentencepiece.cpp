#include "harness/sentencepiece.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "harness/errors.hpp"

namespace masklab {
namespace {

struct Module {
  void* (*load)(const char*, size_t, char*, size_t) = nullptr;
  void (*free)(void*) = nullptr;
  int (*special)(void*, int) = nullptr;
  int (*encode)(void*, const char*, size_t, int32_t*, uint32_t*, int) = nullptr;
  const char* (*piece)(void*, int) = nullptr;
  int (*decode)(void*, const int32_t*, int, char*, int) = nullptr;
  int (*train)(const char*, char*, size_t) = nullptr;
};

std::string module_path() {
  if (const char* env = std::getenv("MASKLAB_SPM_MODULE")) return env;
  // Beside the executable first (a moved build), then where the build put it.
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = exe.parent_path() / "libmasklab_spm.so";
    if (std::filesystem::exists(beside)) return beside.string();
  }
  return MASKLAB_SPM_MODULE;
}

const Module& module() {
  static const Module m = [] {
    const std::string path = module_path();
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib) throw UserError(std::string("SentencePiece support unavailable: ") + ::dlerror());
    Module out;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (!fn) throw UserError(std::string("SentencePiece module lacks ") + name);
    };
    sym(out.load, "mlspm_load");
    sym(out.free, "mlspm_free");
    sym(out.special, "mlspm_special");
    sym(out.encode, "mlspm_encode");
    sym(out.piece, "mlspm_piece");
    sym(out.decode, "mlspm_decode");
    sym(out.train, "mlspm_train");
    return out;
  }();
  return m;
}

}  // namespace

SentencePieceModel::SentencePieceModel(const std::string& proto) {
  char err[512] = {0};
  handle_ = module().load(proto.data(), proto.size(), err, sizeof(err));
  if (!handle_) throw UserError(std::string("not a SentencePiece model (") + err + ")");
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_) module().free(handle_);
}

int SentencePieceModel::piece_size() const { return module().special(handle_, 0); }
int SentencePieceModel::bos_id() const { return module().special(handle_, 1); }
int SentencePieceModel::eos_id() const { return module().special(handle_, 2); }
int SentencePieceModel::pad_id() const { return module().special(handle_, 3); }
int SentencePieceModel::unk_id() const { return module().special(handle_, 4); }

void SentencePieceModel::encode(const std::string& text, std::vector<std::int32_t>& ids,
                                std::vector<std::uint32_t>& offsets) const {
  std::vector<int32_t> id_buf(text.size() + 8);
  std::vector<uint32_t> off_buf(text.size() + 8);
  int n = module().encode(handle_, text.data(), text.size(), id_buf.data(), off_buf.data(),
                          static_cast<int>(id_buf.size()));
  if (n > static_cast<int>(id_buf.size())) {
    id_buf.resize(n);
    off_buf.resize(n);
    n = module().encode(handle_, text.data(), text.size(), id_buf.data(), off_buf.data(), n);
  }
  if (n < 0) throw std::runtime_error("SentencePiece failed to encode a text");
  ids.insert(ids.end(), id_buf.begin(), id_buf.begin() + n);
  offsets.insert(offsets.end(), off_buf.begin(), off_buf.begin() + n);
}

std::string SentencePieceModel::piece(int id) const { return module().piece(handle_, id); }

std::string SentencePieceModel::decode(const std::vector<std::int32_t>& ids) const {
  std::string out(ids.size() * 8 + 16, '\0');
  int n = module().decode(handle_, ids.data(), static_cast<int>(ids.size()), out.data(), static_cast<int>(out.size()));
  if (n > static_cast<int>(out.size())) {
    out.resize(n);
    n = module().decode(handle_, ids.data(), static_cast<int>(ids.size()), out.data(), n);
  }
  if (n < 0) return "";
  out.resize(n);
  return out;
}

void train_sentencepiece(const std::string& flags) {
  char err[1024] = {0};
  if (module().train(flags.c_str(), err, sizeof(err)) != 0) {
    throw UserError(std::string("SentencePiece training failed: ") + err);
  }
}

}  // namespace masklab
