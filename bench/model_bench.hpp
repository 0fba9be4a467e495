// The model benchmark behind `vramfit bench -m MODEL`: prompt processing and generation speed of
// the CPU engine, and how close generation comes to the memory-bandwidth bound.
#pragma once

#include <span>
#include <string_view>

namespace vramfit::bench {

// args: the options after `vramfit bench` (-m MODEL [-p 512] [-n 128] [-t T] [-r 3] [--json]).
// Returns the process exit code; prints results to stdout, errors to stderr.
int run_model_bench(std::span<const std::string_view> args);

}  // namespace vramfit::bench
