// safetensors files (harness/core/safetensors.cpp SafetensorsFile): the
// input is the whole file, held in a memfd so that the reader maps it
// through the same open/fstat/mmap path as a file on disk.
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz_input.hpp"
#include "harness/core/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  static const int fd = memfd_create("fuzz.safetensors", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  fuzz::expect_user_errors([&] {
    const SafetensorsFile file(path);
    for (const auto& [name, tensor] : file.tensors()) {
      // Every byte the header promises must be readable (ASan checks the mapping's end).
      volatile std::uint8_t sink = 0;
      for (size_t i = 0; i < tensor.size; ++i) sink = sink ^ tensor.data[i];
    }
  });
  return 0;
}
