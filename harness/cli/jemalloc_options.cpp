// jemalloc's options, which it reads from this symbol in the executable
// (CMakeLists.txt, masklab_uses_jemalloc): unused pages go back to the
// system from jemalloc's own thread, not from the thread that frees them,
// which at 135M measured about 8% of the step (docs/performance.md).
// MALLOC_CONF in the environment still overrides.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true";
}
