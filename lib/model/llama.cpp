#include "model/llama.hpp"

#include <fmt/format.h>

#include <string>

#include "common/error.hpp"

namespace vramfit::model {
namespace {

using detail::fail;

std::string key(std::string_view name) { return fmt::format("llama.{}", name); }

int32_t positive(const gguf::File &file, std::string_view name, int64_t value) {
  if (value <= 0 || value > INT32_MAX)
    fail(ErrorCode::format, "{}: metadata '{}' = {} is not a positive size", file.name(), key(name), value);
  return static_cast<int32_t>(value);
}

int32_t required_size(const gguf::File &file, std::string_view name) {
  return positive(file, name, file.get<int64_t>(key(name)));
}

// freq_scale from rope.scaling.* (linear scaling only; Llama-3 style scaling is rope_freqs.weight).
float rope_freq_scale(const gguf::File &file) {
  const std::string_view type = file.get_or<std::string_view>(key("rope.scaling.type"), "none");
  float factor = file.get_or<float>(key("rope.scaling.factor"), 0.0f);
  if (factor == 0.0f) factor = file.get_or<float>(key("rope.scale_linear"), 0.0f);
  if (type == "none" || factor == 0.0f || factor == 1.0f) return 1.0f;
  if (type != "linear")
    fail(ErrorCode::unsupported, "{}: rope scaling type '{}' ({}) is not supported (none, linear)",
         file.name(), type, key("rope.scaling.type"));
  return 1.0f / factor;
}

}  // namespace

ModelInfo read_llama_info(const gguf::File &file) {
  ModelInfo info;
  info.architecture = std::string(file.get_or<std::string_view>("general.architecture", ""));
  if (info.architecture != "llama")
    fail(ErrorCode::unsupported, "{}: general.architecture '{}' is not supported (vramfit runs 'llama')",
         file.name(), info.architecture);
  info.name = std::string(file.get_or<std::string_view>("general.name", ""));
  if (file.get_or<int64_t>(key("expert_count"), 0) > 0)
    fail(ErrorCode::unsupported, "{}: mixture-of-experts llama ({}) is not supported", file.name(),
         key("expert_count"));

  info.n_ctx_train = required_size(file, "context_length");
  info.n_embd = required_size(file, "embedding_length");
  info.n_layer = required_size(file, "block_count");
  info.n_ff = required_size(file, "feed_forward_length");
  info.n_head = required_size(file, "attention.head_count");
  info.n_head_kv = positive(file, "attention.head_count_kv",
                            file.get_or<int64_t>(key("attention.head_count_kv"), info.n_head));
  if (info.n_head % info.n_head_kv != 0)
    fail(ErrorCode::format, "{}: {} = {} is not a multiple of {} = {}", file.name(),
         key("attention.head_count"), info.n_head, key("attention.head_count_kv"), info.n_head_kv);
  info.head_dim = positive(file, "attention.key_length",
                           file.get_or<int64_t>(key("attention.key_length"), info.n_embd / info.n_head));
  const int64_t value_length = file.get_or<int64_t>(key("attention.value_length"), info.head_dim);
  if (value_length != info.head_dim)
    fail(ErrorCode::unsupported, "{}: {} = {} differs from the key length {}", file.name(),
         key("attention.value_length"), value_length, info.head_dim);
  info.n_rot = positive(file, "rope.dimension_count",
                        file.get_or<int64_t>(key("rope.dimension_count"), info.head_dim));
  if (info.n_rot % 2 != 0 || info.n_rot > info.head_dim)
    fail(ErrorCode::format, "{}: {} = {} must be even and at most the head size {}", file.name(),
         key("rope.dimension_count"), info.n_rot, info.head_dim);
  info.rms_norm_eps = file.get_or<float>(key("attention.layer_norm_rms_epsilon"), 1e-5f);
  info.rope_freq_base = file.get_or<float>(key("rope.freq_base"), 10000.0f);
  info.rope_freq_scale = rope_freq_scale(file);
  return info;
}

namespace {

// Looks a tensor up and checks its shape (trailing dimensions of 1 may be omitted in the file).
const gguf::TensorInfo *find_checked(const gguf::File &file, const std::string &name,
                                     std::array<int64_t, 2> shape, bool required) {
  const gguf::TensorInfo *t = file.find_tensor(name);
  if (!t) {
    if (required) fail(ErrorCode::format, "{}: tensor '{}' is missing", file.name(), name);
    return nullptr;
  }
  if (t->ne[0] != shape[0] || t->ne[1] != shape[1] || t->ne[2] != 1 || t->ne[3] != 1)
    fail(ErrorCode::format, "{}: tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}]", file.name(),
         name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], shape[0], shape[1]);
  return t;
}

Weight view(const gguf::File &file, const gguf::TensorInfo &t) {
  const auto traits = type_traits(static_cast<uint32_t>(t.type));
  if (!is_supported_for_compute(t.type) || !traits)
    fail(ErrorCode::unsupported, "{}: tensor '{}' has type {}, which vramfit cannot compute with",
         file.name(), t.name, type_name(t.type));
  if (t.ne[0] % traits->block_size != 0)
    fail(ErrorCode::format, "{}: tensor '{}' rows have {} elements, not a multiple of the {} block ({})",
         file.name(), t.name, t.ne[0], type_name(t.type), traits->block_size);
  return Weight{file.data(t).data(), t.type, t.ne[0], t.n_rows(), nullptr, t.name};
}

// Norms and rope factors are read element by element as floats.
Weight f32_view(const gguf::File &file, const gguf::TensorInfo &t) {
  if (t.type != GgmlType::F32)
    fail(ErrorCode::unsupported, "{}: tensor '{}' has type {}; vramfit expects F32 for it", file.name(),
         t.name, type_name(t.type));
  return view(file, t);
}

Weight matrix(const gguf::File &file, const std::string &name, int64_t n_in, int64_t n_out) {
  return view(file, *find_checked(file, name, {n_in, n_out}, true));
}
Weight vector(const gguf::File &file, const std::string &name, int64_t n) {
  return f32_view(file, *find_checked(file, name, {n, 1}, true));
}

}  // namespace

LlamaWeights read_llama_weights(const gguf::File &file, ModelInfo &info) {
  LlamaWeights w;
  const gguf::TensorInfo *embd = file.find_tensor("token_embd.weight");
  if (!embd) fail(ErrorCode::format, "{}: tensor 'token_embd.weight' is missing", file.name());
  info.n_vocab = positive(file, "vocab (token_embd.weight rows)", embd->ne[1]);
  const int64_t n_embd = info.n_embd, n_q = int64_t{info.n_head} * info.head_dim,
                n_kv = int64_t{info.n_head_kv} * info.head_dim;

  w.token_embd = matrix(file, "token_embd.weight", n_embd, info.n_vocab);
  w.output_norm = vector(file, "output_norm.weight", n_embd);
  if (const auto *out = find_checked(file, "output.weight", {n_embd, info.n_vocab}, false)) {
    w.output = view(file, *out);
  } else {
    w.output = w.token_embd;  // tied embeddings
    info.tied_output = true;
  }
  if (const auto *freqs = find_checked(file, "rope_freqs.weight", {info.n_rot / 2, 1}, false))
    w.rope_freqs = f32_view(file, *freqs);

  for (int32_t i = 0; i < info.n_layer; ++i) {
    auto name = [i](std::string_view t) { return fmt::format("blk.{}.{}.weight", i, t); };
    LayerWeights &l = w.layers.emplace_back();
    l.attn_norm = vector(file, name("attn_norm"), n_embd);
    l.wq = matrix(file, name("attn_q"), n_embd, n_q);
    l.wk = matrix(file, name("attn_k"), n_embd, n_kv);
    l.wv = matrix(file, name("attn_v"), n_embd, n_kv);
    l.wo = matrix(file, name("attn_output"), n_q, n_embd);
    l.ffn_norm = vector(file, name("ffn_norm"), n_embd);
    l.w_gate = matrix(file, name("ffn_gate"), n_embd, info.n_ff);
    l.w_up = matrix(file, name("ffn_up"), n_embd, info.n_ff);
    l.w_down = matrix(file, name("ffn_down"), info.n_ff, n_embd);
  }
  w.for_each([&](const Weight &weight) {
    info.weight_bytes += row_bytes(weight.type, weight.ne0) * static_cast<uint64_t>(weight.ne1);
    info.n_params += static_cast<uint64_t>(weight.ne0 * weight.ne1);
  });
  return w;
}

}  // namespace vramfit::model
