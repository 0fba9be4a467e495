// An architecture vramfit runs: how to read its hyper-parameters and weights from a GGUF file,
// and its forward pass, composed from the shared blocks of model::Forward (lib/model/forward.hpp).
// One short file per architecture in lib/model/arch/; adding one means a file, a line in
// architecture.cpp's list, and its tests.
#pragma once

#include <string>
#include <string_view>

#include "model/weights.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/model.hpp"

namespace vramfit::model {

class Forward;

struct Architecture {
  std::string_view name;  // general.architecture
  ModelInfo (*read_info)(const gguf::File &file);
  ModelWeights (*read_weights)(const gguf::File &file, ModelInfo &info);
  void (*forward)(Forward &f);  // embed, the layers, the output head
  bool rope_neox = false;       // rotate (i, i + n_rot/2) rather than adjacent pairs
};

// The architecture of general.architecture; Error(unsupported) listing the ones vramfit runs.
const Architecture &find_architecture(const gguf::File &file);
// "llama, qwen2, qwen3, qwen3moe, gpt-oss".
std::string supported_architectures();

// Reads info and weights with the file's architecture (weights.arch set, info's byte counts filled).
ModelWeights read_model(const gguf::File &file, ModelInfo &info);

}  // namespace vramfit::model
