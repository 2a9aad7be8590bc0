# MASKLAB_SANITIZE=ON: the build of `make asan` and `make fuzz` (build-asan/,
# clang-14). masklab's own code gets AddressSanitizer, UndefinedBehaviorSanitizer
# (any undefined behaviour aborts: -fno-sanitize-recover) and libFuzzer's
# coverage hooks; LibTorch stays as Debian built it. -O1 and line tables only
# keep the build lean enough for CI while reports still name file:line.
option(MASKLAB_SANITIZE "Build with ASan + UBSan and the libFuzzer targets of fuzz/ (clang)" OFF)
if(MASKLAB_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MASKLAB_SANITIZE needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  # Asserts stay on: a broken assumption is a finding, not a silent continue.
  set(CMAKE_CXX_FLAGS_RELEASE "-O1 -gline-tables-only")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                      -fsanitize=fuzzer-no-link)
  add_link_options(-fsanitize=address,undefined)
endif()
