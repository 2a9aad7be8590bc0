#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include "harness/cli/cli.hpp"

namespace {

bool g_in_main = false;
std::terminate_handler g_default_terminate = nullptr;

// LibTorch's static initialisers allocate before main; under a tight
// address-space limit one throws std::bad_alloc that nothing can catch, and
// the process would abort with no word of why. This handler is installed
// from .preinit_array, which runs before any shared library's initialisers,
// and turns that into one line and exit 2: nothing was started or written.
[[noreturn]] void on_terminate() {
  if (!g_in_main) {
    try {
      if (auto current = std::current_exception()) std::rethrow_exception(current);
    } catch (const std::bad_alloc&) {
      struct rlimit rl {};
      std::string limit;
      if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        limit = " under RLIMIT_AS " + std::to_string(rl.rlim_cur / (1024 * 1024)) + " MB";
      }
      const std::string line = "masklab: error: out of memory: startup: LibTorch could not load" + limit +
                               "; raise the limit (ulimit -v)\n";
      (void)!::write(STDERR_FILENO, line.data(), line.size());
      ::_exit(2);
    } catch (...) {
    }
  }
  if (g_default_terminate != nullptr) g_default_terminate();
  std::abort();
}

void install_startup_terminate_handler(int, char**, char**) { g_default_terminate = std::set_terminate(on_terminate); }

bool has_address_space_limit() {
  for (const int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit rl {};
    if (::getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) return true;
  }
  return false;
}

// OpenBLAS's initialiser starts a worker per core before main, each mapping a
// buffer; under an address-space limit a failed mapping is retried forever
// and the process hangs before it can say a word (docs/design.md, invariant
// 28). OPENBLAS_NUM_THREADS=1 keeps start-up to the calling thread's buffer;
// the run sets its own thread count later (train.threads). The variable must
// be in the environment the process starts with: a setenv here is not seen
// by OpenBLAS, so the binary re-executes itself once with it. An exec that
// fails leaves the process as it was.
void start_blas_single_threaded_under_a_limit(int, char** argv, char** envp) {
  if (!has_address_space_limit()) return;
  std::size_t n = 0;
  for (; envp[n] != nullptr; ++n) {
    if (std::strncmp(envp[n], "OPENBLAS_NUM_THREADS=", 21) == 0) return;
  }
  auto** env = static_cast<char**>(std::malloc((n + 2) * sizeof(char*)));
  if (env == nullptr) return;
  std::memcpy(env, envp, n * sizeof(char*));
  static char one_thread[] = "OPENBLAS_NUM_THREADS=1";
  env[n] = one_thread;
  env[n + 1] = nullptr;
  ::execve("/proc/self/exe", argv, env);
  std::free(env);
}

void before_libraries(int argc, char** argv, char** envp) {
  start_blas_single_threaded_under_a_limit(argc, argv, envp);
  install_startup_terminate_handler(argc, argv, envp);
}

}  // namespace

// .preinit_array runs before any shared library's initialiser. One pointer:
// the section's other entries (the sanitizer runtime's) are pointers too,
// and an array of ours could be aligned past them, leaving a null entry.
// AddressSanitizer would also pad an instrumented global with a redzone.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MASKLAB_NO_REDZONE __attribute__((no_sanitize("address")))
#endif
#endif
#ifndef MASKLAB_NO_REDZONE
#define MASKLAB_NO_REDZONE
#endif
__attribute__((section(".preinit_array"), used)) MASKLAB_NO_REDZONE static void (*const kPreinit)(int, char**, char**) =
    before_libraries;

int main(int argc, char** argv) {
  g_in_main = true;
  const int status = masklab::cli_main(argc, argv);
  if (status != 0) {
    // After a failure (out of memory above all) OpenBLAS's exit handler can
    // wait forever on its worker threads; everything is written and closed,
    // so flush what is buffered and leave without running exit handlers.
    std::cout.flush();
    std::fflush(nullptr);
    ::_exit(status);
  }
  return status;
}
