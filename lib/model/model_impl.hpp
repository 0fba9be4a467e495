// What a vramfit::Model holds: the mapped file, its tokenizer, hyper-parameters and weight views.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "model/executor.hpp"
#include "model/weights.hpp"
#include "tokenizer/tokenizer.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/model.hpp"

namespace vramfit {

struct Model::Impl {
  std::filesystem::path path;
  ModelParams params;
  gguf::File file;  // the memory map every weight view points into
  tokenizer::Tokenizer tokenizer;
  ModelInfo info;
  // device == nullptr: the host memory of the map; else uploaded to the executor's device
  model::ModelWeights weights;
  // The offload plan when it put nothing on the device (no executor then: the CPU runs it all).
  std::optional<Plan> host_only_plan;
  // The device and the offload plan it runs (null: the CPU alone). Declared last, so it is
  // destroyed first and frees its device memory while the views into it are no longer used.
  std::unique_ptr<model::Executor> executor;
};

}  // namespace vramfit
