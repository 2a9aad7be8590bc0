#include "harness/data/sentencepiece.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "harness/core/errors.hpp"

namespace masklab {
namespace {

// The helper program: beside the running executable first (a moved build),
// then where the build put it.
std::string helper_path() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = exe.parent_path() / "masklab_spm";
    if (std::filesystem::exists(beside)) return beside.string();
  }
  return MASKLAB_SPM_TOOL;
}

struct Child {
  pid_t pid;
  int to_child;    // its stdin
  int from_child;  // its stdout
};

// Starts `masklab_spm ARG1 ARG2` with pipes on stdin/stdout; stderr goes to the pipe too when merge_stderr.
Child spawn(const std::string& arg1, const std::string& arg2, bool merge_stderr) {
  int in_pipe[2], out_pipe[2];
  if (::pipe(in_pipe) != 0 || ::pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
  const std::string tool = helper_path();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    if (merge_stderr) ::dup2(out_pipe[1], STDERR_FILENO);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) ::close(fd);
    ::execl(tool.c_str(), tool.c_str(), arg1.c_str(), arg2.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "cannot run %s\n", tool.c_str());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  return {pid, in_pipe[1], out_pipe[0]};
}

}  // namespace

void SentencePieceModel::send(const void* data, size_t n) const {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(to_child_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw std::runtime_error("the SentencePiece helper stopped");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void SentencePieceModel::receive(void* data, size_t n) const {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(from_child_, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw std::runtime_error("the SentencePiece helper stopped");
    p += r;
    n -= static_cast<size_t>(r);
  }
}

SentencePieceModel::SentencePieceModel(const std::string& model_path) {
  // A helper that dies must not kill us with SIGPIPE; write() reports it instead.
  ::signal(SIGPIPE, SIG_IGN);
  const Child child = spawn("serve", model_path, /*merge_stderr=*/false);
  pid_ = child.pid;
  to_child_ = child.to_child;
  from_child_ = child.from_child;
  try {
    std::int32_t status = 0;
    receive(&status, sizeof(status));
    if (status != 0) {
      std::uint32_t n = 0;
      receive(&n, sizeof(n));
      std::string message(n, '\0');
      receive(message.data(), n);
      throw UserError("not a SentencePiece model (" + message + ")");
    }
    std::int32_t header[5];
    receive(header, sizeof(header));
    bos_ = header[1];
    eos_ = header[2];
    pad_ = header[3];
    unk_ = header[4];
    pieces_.resize(static_cast<size_t>(header[0]));
    for (auto& piece : pieces_) {
      std::uint32_t n = 0;
      receive(&n, sizeof(n));
      piece.resize(n);
      receive(piece.data(), n);
    }
  } catch (const std::runtime_error& e) {
    stop_helper();
    if (dynamic_cast<const UserError*>(&e)) throw;
    throw UserError(std::string("cannot load the SentencePiece model: ") + e.what());
  }
}

SentencePieceModel::~SentencePieceModel() { stop_helper(); }

void SentencePieceModel::stop_helper() {
  if (to_child_ >= 0) ::close(to_child_);  // end of input ends the helper
  if (from_child_ >= 0) ::close(from_child_);
  if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  to_child_ = from_child_ = -1;
  pid_ = -1;
}

void SentencePieceModel::encode(const std::string& text, std::vector<std::int32_t>& ids,
                                std::vector<std::uint32_t>& offsets) const {
  const char op = 'E';
  const auto n = static_cast<std::uint32_t>(text.size());
  send(&op, 1);
  send(&n, sizeof(n));
  send(text.data(), text.size());
  std::uint32_t count = 0;
  receive(&count, sizeof(count));
  std::vector<std::int32_t> pairs(2 * static_cast<size_t>(count));
  receive(pairs.data(), pairs.size() * sizeof(std::int32_t));
  for (std::uint32_t i = 0; i < count; ++i) {
    ids.push_back(pairs[2 * i]);
    offsets.push_back(static_cast<std::uint32_t>(pairs[2 * i + 1]));
  }
}

const std::string& SentencePieceModel::piece(int id) const {
  static const std::string kNone;
  return id >= 0 && id < piece_size() ? pieces_[static_cast<size_t>(id)] : kNone;
}

std::string SentencePieceModel::decode(const std::vector<std::int32_t>& ids) const {
  const char op = 'D';
  const auto n = static_cast<std::uint32_t>(ids.size());
  send(&op, 1);
  send(&n, sizeof(n));
  send(ids.data(), ids.size() * sizeof(std::int32_t));
  std::uint32_t length = 0;
  receive(&length, sizeof(length));
  std::string text(length, '\0');
  receive(text.data(), length);
  return text;
}

void train_sentencepiece(const std::string& flags) {
  const Child child = spawn("train", flags, /*merge_stderr=*/true);
  ::close(child.to_child);
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = ::read(child.from_child, buf, sizeof(buf))) > 0;) output.append(buf, static_cast<size_t>(n));
  ::close(child.from_child);
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!output.empty() && output.back() == '\n') output.pop_back();
    const size_t last = output.rfind('\n');
    throw UserError("SentencePiece training failed: " + (last == std::string::npos ? output : output.substr(last + 1)));
  }
}

}  // namespace masklab
