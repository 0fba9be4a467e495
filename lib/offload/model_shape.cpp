#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "common/error.hpp"
#include "offload/layout.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace vramfit {

namespace {

uint32_t hparam(const gguf::File &file, const std::string &key) {
  if (!file.has(key))
    detail::fail(ErrorCode::format, "{}: metadata key '{}' is missing; the planner needs it", file.name(), key);
  return file.get<uint32_t>(key);
}

// The expert keys, with the same prefix as the rest (Mixtral: `llama.expert_count`). A MoE file
// need not give feed_forward_length (qwen3moe); the experts' width defaults to it (Mixtral).
void read_experts(const gguf::File &file, const std::string &a, ModelShape &m) {
  m.n_expert = file.get_or<uint32_t>(a + "expert_count", 0);
  m.n_expert_used = file.get_or<uint32_t>(a + "expert_used_count", 0);
  m.n_ff = m.n_expert > 0 ? file.get_or<uint32_t>(a + "feed_forward_length", 0) : hparam(file, a + "feed_forward_length");
  m.n_ff_exp = file.get_or<uint32_t>(a + "expert_feed_forward_length", m.n_ff);
  if (m.n_expert > 0 && m.n_ff_exp == 0)
    detail::fail(ErrorCode::format, "{}: '{}expert_feed_forward_length' (or '{}feed_forward_length') is missing",
                 file.name(), a, a);
}

// Every 3-D expert tensor (and its 2-D bias) has one slice per expert in its last dimension.
void check_expert_tensor(const gguf::File &file, const gguf::TensorInfo &t, uint32_t n_expert) {
  if (offload::classify(t.name).role != offload::Role::experts) return;
  const int64_t last = t.n_dims > 0 ? t.ne[t.n_dims - 1] : 0;
  if (n_expert == 0 || last != int64_t{n_expert})
    detail::fail(ErrorCode::format, "{}: tensor '{}' has {} experts in its last dimension, but expert_count is {}",
                 file.name(), t.name, last, n_expert);
}

// Only gpt-oss's layer pattern is known here (llama.cpp's swa pattern 2: windowed, full, ...);
// another architecture's window key leaves every cache at full size, which is never too small.
void read_sliding_window(const gguf::File &file, const std::string &a, ModelShape &m) {
  if (m.architecture != "gpt-oss") return;
  m.n_swa = file.get_or<uint32_t>(a + "attention.sliding_window", 0);
  m.n_swa_pattern = m.n_swa > 0 ? 2 : 0;
}

}  // namespace

ModelShape ModelShape::from_gguf(const gguf::File &file) {
  ModelShape m;
  m.architecture = std::string(file.get_or<std::string_view>("general.architecture", "llama"));
  const std::string a = m.architecture + ".";
  m.n_layer = hparam(file, a + "block_count");
  m.n_embd = hparam(file, a + "embedding_length");
  m.n_head = hparam(file, a + "attention.head_count");
  read_experts(file, a, m);
  m.n_head_kv = file.get_or<uint32_t>(a + "attention.head_count_kv", m.n_head);
  if (m.n_head == 0 || m.n_head_kv == 0)
    detail::fail(ErrorCode::format, "{}: attention head counts must be positive", file.name());
  m.head_dim = file.get_or<uint32_t>(a + "attention.key_length", m.n_embd / m.n_head);
  m.n_ctx_train = file.get_or<uint32_t>(a + "context_length", 0);
  read_sliding_window(file, a, m);
  offload::check_expert_counts(m, ErrorCode::format, file.name());
  // Sizes the planner multiplies stay far from 2^64: a K/V row under 2^24 elements, all tensor
  // data under 2^56 bytes (64 PiB), so no sum or product of them can wrap.
  if (m.n_embd_kv() > (1ull << 24))
    detail::fail(ErrorCode::format, "{}: {}attention.head_count_kv x key_length = {} x {} is beyond any model",
                 file.name(), a, m.n_head_kv, m.head_dim);
  uint64_t total_bytes = 0;
  int64_t last_layer = -1;
  for (const gguf::TensorInfo &t : file.tensors()) {
    check_expert_tensor(file, t, m.n_expert);
    if (t.n_bytes > (1ull << 56) - total_bytes)
      detail::fail(ErrorCode::format, "{}: tensor '{}' brings the tensor data past 2^56 bytes: beyond any model",
                   file.name(), t.name);
    total_bytes += t.n_bytes;
    m.tensors.push_back(Tensor{t.name, t.type, t.n_elements(), t.ne[0], t.n_bytes});
    if (t.name == "token_embd.weight") m.n_vocab = static_cast<uint32_t>(t.ne[1]);
    last_layer = std::max<int64_t>(last_layer, offload::classify(t.name).layer);
  }
  // The layer count must be the tensor list's, so the work of planning is bounded by the file.
  if (last_layer + 1 != int64_t{m.n_layer})
    detail::fail(ErrorCode::format, "{}: {}block_count is {} but the tensors describe {} layers (blk.0 .. blk.{})",
                 file.name(), a, m.n_layer, last_layer + 1, last_layer);
  if (m.n_vocab == 0 && file.has("tokenizer.ggml.tokens"))
    m.n_vocab = static_cast<uint32_t>(file.find("tokenizer.ggml.tokens")->array_size());
  return m;
}

std::vector<KernelShape> kernel_shapes(const ModelShape &model, uint32_t n_batch) {
  using offload::Role;
  const bool untied = offload::has_output_tensor(model);  // token_embd only looked up, never multiplied
  const int64_t dense_tokens = std::clamp<int64_t>(n_batch, 1, 128);
  const int64_t expert_tokens =
      model.n_expert > 0 ? std::max<int64_t>(1, std::llround(double(n_batch) * model.expert_fraction())) : 1;
  // (type, n_in, n_out, tokens) -> bytes
  std::map<std::tuple<GgmlType, int64_t, int64_t, int64_t>, uint64_t> bytes;
  for (const ModelShape::Tensor &t : model.tensors) {
    const Role role = offload::classify(t.name).role;
    if (t.row_length <= 0 || t.n_elements <= t.row_length) continue;  // a vector: no matrix product
    if (role == Role::token_embd && untied) continue;
    const bool expert = role == Role::experts && model.n_expert > 0;
    const int64_t rows = t.n_elements / t.row_length / (expert ? model.n_expert : 1);
    bytes[{t.type, t.row_length, std::max<int64_t>(rows, 1), expert ? expert_tokens : dense_tokens}] += t.bytes;
  }
  std::map<GgmlType, std::pair<uint64_t, KernelShape>> largest;  // type -> (bytes, shape)
  for (const auto &[key, n] : bytes) {
    const auto &[type, row_length, rows, tokens] = key;
    auto &[most, shape] = largest[type];
    if (n > most) most = n, shape = KernelShape{type, row_length, rows, tokens};
  }
  std::vector<KernelShape> shapes;
  for (const auto &[type, entry] : largest) shapes.push_back(entry.second);
  return shapes;
}

}  // namespace vramfit

namespace vramfit::offload {

void check_expert_counts(const ModelShape &m, ErrorCode code, std::string_view who) {
  const std::string_view arch = m.architecture;
  if (m.n_expert == 0 && m.n_expert_used > 0)
    detail::fail(code, "{}: {}.expert_used_count is {} but there is no expert_count", who, arch, m.n_expert_used);
  if (m.n_expert > 0 && (m.n_expert_used == 0 || m.n_expert_used > m.n_expert))
    detail::fail(code, "{}: {}.expert_used_count {} must be between 1 and expert_count {}", who, arch,
                 m.n_expert_used, m.n_expert);
  if (m.n_expert > 0 && m.n_ff_exp == 0)
    detail::fail(code, "{}: a mixture-of-experts model needs a positive expert feed-forward width", who);
}

}  // namespace vramfit::offload
