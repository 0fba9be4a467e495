#include "model/architecture.hpp"

#include <array>

#include "common/error.hpp"
#include "model/loader.hpp"

namespace vramfit::model {

extern const Architecture llama_architecture, qwen2_architecture, qwen3_architecture, qwen3moe_architecture,
    gptoss_architecture;

namespace {

const std::array<const Architecture *, 5> &architectures() {
  static const std::array<const Architecture *, 5> all{&llama_architecture, &qwen2_architecture,
                                                        &qwen3_architecture, &qwen3moe_architecture,
                                                        &gptoss_architecture};
  return all;
}

}  // namespace

std::string supported_architectures() {
  std::string out;
  for (const Architecture *a : architectures()) out += (out.empty() ? "" : ", ") + std::string(a->name);
  return out;
}

const Architecture &find_architecture(const gguf::File &file) {
  const std::string_view name = file.get_or<std::string_view>("general.architecture", "");
  for (const Architecture *a : architectures())
    if (a->name == name) return *a;
  detail::fail(ErrorCode::unsupported, "{}: general.architecture '{}' is not supported (vramfit runs {})", file.name(),
               name, supported_architectures());
}

ModelWeights read_model(const gguf::File &file, ModelInfo &info) {
  const Architecture &arch = find_architecture(file);
  info = arch.read_info(file);
  ModelWeights w = arch.read_weights(file, info);
  w.arch = &arch;
  TensorReader(file, info).count(w);
  return w;
}

}  // namespace vramfit::model
