// What a vramfit::Model holds: the mapped file, its tokenizer, hyper-parameters and weight views.
#pragma once

#include <filesystem>

#include "model/llama.hpp"
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
  model::LlamaWeights weights;  // device == nullptr: the host memory of the map
};

}  // namespace vramfit
