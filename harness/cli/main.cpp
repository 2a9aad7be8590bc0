#include "harness/cli/cli.hpp"

int main(int argc, char** argv) { return masklab::cli_main(argc, argv); }
