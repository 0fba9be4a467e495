#include "common/error.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace vramfit {

namespace {

uint32_t hparam(const gguf::File &file, const std::string &key) {
  if (!file.has(key))
    detail::fail(ErrorCode::format, "{}: metadata key '{}' is missing; the planner needs it", file.name(), key);
  return file.get<uint32_t>(key);
}

}  // namespace

ModelShape ModelShape::from_gguf(const gguf::File &file) {
  ModelShape m;
  m.architecture = std::string(file.get_or<std::string_view>("general.architecture", "llama"));
  const std::string a = m.architecture + ".";
  m.n_layer = hparam(file, a + "block_count");
  m.n_embd = hparam(file, a + "embedding_length");
  m.n_head = hparam(file, a + "attention.head_count");
  m.n_ff = hparam(file, a + "feed_forward_length");
  m.n_head_kv = file.get_or<uint32_t>(a + "attention.head_count_kv", m.n_head);
  if (m.n_head == 0 || m.n_head_kv == 0)
    detail::fail(ErrorCode::format, "{}: attention head counts must be positive", file.name());
  m.head_dim = file.get_or<uint32_t>(a + "attention.key_length", m.n_embd / m.n_head);
  m.n_ctx_train = file.get_or<uint32_t>(a + "context_length", 0);
  for (const gguf::TensorInfo &t : file.tensors()) {
    m.tensors.push_back(Tensor{t.name, t.type, t.n_elements(), t.ne[0], t.n_bytes});
    if (t.name == "token_embd.weight") m.n_vocab = static_cast<uint32_t>(t.ne[1]);
  }
  if (m.n_vocab == 0 && file.has("tokenizer.ggml.tokens"))
    m.n_vocab = static_cast<uint32_t>(file.find("tokenizer.ggml.tokens")->array_size());
  return m;
}

}  // namespace vramfit
