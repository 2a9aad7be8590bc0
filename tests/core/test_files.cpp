// Whole-file writes: a failed write names the path and the OS's reason.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "harness/core/files.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

std::string write_error(const std::string& path, const std::string& content) {
  try {
    write_file_atomic(path, content);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("write_file_atomic replaces a file whole", "[fast][files]") {
  test::TempDir dir;
  const std::string path = dir.file("a.txt");
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  CHECK(test::read_text(path) == "second");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);  // no temporary left
}

TEST_CASE("a failed write names the path and the OS error", "[fast][files][errors]") {
  test::TempDir dir;
  SECTION("disk full (ENOSPC)") {
    // The temporary is PATH.tmp.<pid>; pointing it at /dev/full makes every write fail with ENOSPC.
    const std::string path = dir.file("metrics.json");
    fs::create_symlink("/dev/full", path + ".tmp." + std::to_string(::getpid()));
    const std::string error = write_error(path, std::string(1 << 16, 'x'));
    CHECK_THAT(error, Catch::Contains("cannot write " + path) && Catch::Contains(std::strerror(ENOSPC)));
    CHECK_FALSE(fs::exists(path));
  }
  SECTION("parent is a file (ENOTDIR)") {
    test::write_text(dir.file("plain"), "x");
    const std::string path = dir.file("plain") + "/metrics.json";
    CHECK_THAT(write_error(path, "{}"), Catch::Contains(path) && Catch::Contains(std::strerror(ENOTDIR)));
  }
  SECTION("no such folder (ENOENT)") {
    const std::string path = dir.file("gone") + "/metrics.json";
    CHECK_THAT(write_error(path, "{}"), Catch::Contains(path) && Catch::Contains(std::strerror(ENOENT)));
  }
  SECTION("target is a folder: the rename fails (EISDIR)") {
    fs::create_directories(dir.file("d"));
    test::write_text(dir.file("d/keep"), "x");
    const std::string error = write_error(dir.file("d"), "{}");
    CHECK_THAT(error, Catch::Contains("cannot rename") && Catch::Contains(dir.file("d")));
    CHECK((error.find(std::strerror(EISDIR)) != std::string::npos ||
           error.find(std::strerror(ENOTEMPTY)) != std::string::npos));
  }
}

TEST_CASE("an append that fails (a disk that fills mid-run) names the path and the OS error", "[fast][files][errors]") {
  test::TempDir dir;
  const std::string path = dir.file("curve.jsonl");
  fs::create_symlink("/dev/full", path);
  AppendFile file(path);
  std::string error;
  try {
    file.append("{\"step\": 1}\n");
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  CHECK_THAT(error, Catch::Contains("cannot write " + path) && Catch::Contains(std::strerror(ENOSPC)));

  // A healthy file gets every byte, in order.
  const std::string ok = dir.file("ok.jsonl");
  {
    AppendFile lines(ok);
    lines.append("a\n");
    lines.append("b\n");
  }
  CHECK(test::read_text(ok) == "a\nb\n");
  CHECK_THAT(std::string([&] {
               try {
                 AppendFile missing(dir.file("gone") + "/x.jsonl");
               } catch (const std::runtime_error& e) {
                 return std::string(e.what());
               }
               return std::string();
             }()),
             Catch::Contains(dir.file("gone")) && Catch::Contains(std::strerror(ENOENT)));
}
