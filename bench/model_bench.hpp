// The model benchmark behind `vramfit bench -m MODEL`: prompt processing and generation speed of
// the engine, and how close generation comes to the memory-bandwidth bound. The CLI parses the
// flags (the shared model/placement and context groups); this runs the measurement.
#pragma once

#include <cstdint>
#include <string>

#include "vramfit/context.hpp"
#include "vramfit/model.hpp"

namespace vramfit::bench {

struct ModelBenchOptions {
  std::string model_path;
  ModelParams model;      // device and placement; n_ctx/n_batch/kv_type as `context`
  ContextParams context;  // n_ctx must hold n_depth + n_prompt + n_gen; n_batch: tokens per prompt pass
  int32_t n_prompt = 512, n_gen = 128, repeats = 3;
  int32_t n_depth = 0;  // tokens decoded into the context (untimed) before each test, as llama-bench's -d
  bool json = false;
};

// Loads the model, runs the repeats and prints the medians (stdout) and the memory report
// (stderr). Returns the process exit code; library errors propagate as vramfit::Error.
int run_model_bench(const ModelBenchOptions &options);

}  // namespace vramfit::bench
