#include "model/loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/error.hpp"

namespace vramfit::model {
namespace {

using detail::fail;

// "<arch>.<name>" keys of one file.
class Keys {
 public:
  Keys(const gguf::File &file, std::string_view arch) : file_(file), arch_(arch) {}

  std::string key(std::string_view name) const { return fmt::format("{}.{}", arch_, name); }
  bool has(std::string_view name) const { return file_.has(key(name)); }
  int32_t size(std::string_view name) const { return positive(name, file_.get<int64_t>(key(name))); }
  int32_t size_or(std::string_view name, int64_t fallback) const {
    return positive(name, file_.get_or<int64_t>(key(name), fallback));
  }
  float real_or(std::string_view name, float fallback) const { return file_.get_or<float>(key(name), fallback); }
  std::string_view text_or(std::string_view name, std::string_view fallback) const {
    return file_.get_or<std::string_view>(key(name), fallback);
  }
  [[noreturn]] void bad(std::string_view name, std::string_view why) const {
    fail(ErrorCode::format, "{}: metadata '{}' {}", file_.name(), key(name), why);
  }

 private:
  int32_t positive(std::string_view name, int64_t value) const {
    if (value <= 0 || value > INT32_MAX) bad(name, fmt::format("= {} is not a positive size", value));
    return static_cast<int32_t>(value);
  }
  const gguf::File &file_;
  std::string_view arch_;
};

// ggml_rope_yarn_corr_dim: the dimension whose wavelength fits n_rot_turns times in the original context.
float yarn_corr_dim(int32_t n_dims, int32_t n_ctx_orig, float n_rot_turns, float base) {
  return static_cast<float>(n_dims) *
         std::log(static_cast<float>(n_ctx_orig) / (n_rot_turns * 2 * static_cast<float>(M_PI))) /
         (2 * std::log(base));
}

// YaRN as llama.cpp sets it up: ext_factor 1, attn_factor 1 (ggml's rope then multiplies by
// 1 + 0.1 ln factor itself), correction dims from beta_fast 32 / beta_slow 1 (its defaults; GGUF
// files carry no beta keys), clamped to [0, n_rot - 1].
void read_yarn(const Keys &keys, ModelInfo &info) {
  constexpr float beta_fast = 32.0f, beta_slow = 1.0f;
  const int32_t n_ctx_orig = keys.size_or("rope.scaling.original_context_length", info.n_ctx_train);
  info.rope_yarn_ext_factor = 1.0f;
  info.rope_yarn_attn_factor = 1.0f;
  info.rope_yarn_corr_low =
      std::max(0.0f, std::floor(yarn_corr_dim(info.n_rot, n_ctx_orig, beta_fast, info.rope_freq_base)));
  info.rope_yarn_corr_high = std::min(static_cast<float>(info.n_rot - 1),
                                      std::ceil(yarn_corr_dim(info.n_rot, n_ctx_orig, beta_slow, info.rope_freq_base)));
}

// rope.scaling.*: linear (freq_scale = 1/factor) or YaRN (the same, plus its ramp); Llama-3 style
// scaling is rope_freqs.weight.
void read_rope_scaling(const gguf::File &file, const Keys &keys, ModelInfo &info) {
  const std::string_view type = keys.text_or("rope.scaling.type", "none");
  float factor = keys.real_or("rope.scaling.factor", 0.0f);
  if (factor == 0.0f) factor = keys.real_or("rope.scale_linear", 0.0f);
  if (type == "none" || factor == 0.0f || factor == 1.0f) return;
  if (type != "linear" && type != "yarn")
    fail(ErrorCode::unsupported, "{}: rope scaling type '{}' ({}) is not supported (none, linear, yarn)", file.name(),
         type, keys.key("rope.scaling.type"));
  info.rope_freq_scale = 1.0f / factor;
  if (type == "yarn") read_yarn(keys, info);
}

}  // namespace

ModelInfo read_transformer_info(const gguf::File &file, std::string_view arch, bool require_n_ff) {
  const Keys keys(file, arch);
  ModelInfo info;
  info.architecture = std::string(arch);
  info.name = std::string(file.get_or<std::string_view>("general.name", ""));
  info.n_ctx_train = keys.size("context_length");
  info.n_embd = keys.size("embedding_length");
  info.n_layer = keys.size("block_count");
  if (require_n_ff || keys.has("feed_forward_length")) info.n_ff = keys.size("feed_forward_length");
  info.n_head = keys.size("attention.head_count");
  info.n_head_kv = keys.size_or("attention.head_count_kv", info.n_head);
  if (info.n_head % info.n_head_kv != 0)
    keys.bad("attention.head_count", fmt::format("= {} is not a multiple of {} = {}", info.n_head,
                                                  keys.key("attention.head_count_kv"), info.n_head_kv));
  info.head_dim = keys.size_or("attention.key_length", info.n_embd / info.n_head);
  const int32_t value_length = keys.size_or("attention.value_length", info.head_dim);
  if (value_length != info.head_dim)
    fail(ErrorCode::unsupported, "{}: {} = {} differs from the key length {}", file.name(),
         keys.key("attention.value_length"), value_length, info.head_dim);
  info.n_rot = keys.size_or("rope.dimension_count", info.head_dim);
  if (info.n_rot % 2 != 0 || info.n_rot > info.head_dim)
    keys.bad("rope.dimension_count", fmt::format("= {} must be even and at most the head size {}", info.n_rot,
                                                 info.head_dim));
  info.rms_norm_eps = keys.real_or("attention.layer_norm_rms_epsilon", 1e-5f);
  info.rope_freq_base = keys.real_or("rope.freq_base", 10000.0f);
  read_rope_scaling(file, keys, info);
  return info;
}

void read_expert_info(const gguf::File &file, ModelInfo &info) {
  const Keys keys(file, info.architecture);
  info.n_expert = keys.size("expert_count");
  info.n_expert_used = keys.size("expert_used_count");
  if (info.n_expert_used > info.n_expert)
    keys.bad("expert_used_count", fmt::format("= {} exceeds {} = {}", info.n_expert_used,
                                              keys.key("expert_count"), info.n_expert));
  if (info.n_ff == 0 && !keys.has("expert_feed_forward_length"))
    keys.bad("expert_feed_forward_length", "is missing (and there is no feed_forward_length)");
  info.n_ff_exp = keys.size_or("expert_feed_forward_length", info.n_ff);
  info.n_ff = 0;  // every layer of these architectures is MoE (qwen3moe's feed_forward_length is unused)
}

std::string layer_tensor(int32_t layer, std::string_view name, std::string_view suffix) {
  return fmt::format("blk.{}.{}.{}", layer, name, suffix);
}

namespace {

// Looks a tensor up and checks its shape (trailing dimensions of 1 may be omitted in the file).
const gguf::TensorInfo *find_checked(const gguf::File &file, const std::string &name,
                                     std::array<int64_t, 3> shape, bool required) {
  const gguf::TensorInfo *t = file.find_tensor(name);
  if (!t) {
    if (required) fail(ErrorCode::format, "{}: tensor '{}' is missing", file.name(), name);
    return nullptr;
  }
  if (t->ne[0] != shape[0] || t->ne[1] != shape[1] || t->ne[2] != shape[2] || t->ne[3] != 1)
    fail(ErrorCode::format, "{}: tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}, {}]", file.name(), name,
         t->ne[0], t->ne[1], t->ne[2], t->ne[3], shape[0], shape[1], shape[2]);
  return t;
}

Weight view(const gguf::File &file, const gguf::TensorInfo &t) {
  const auto traits = type_traits(static_cast<uint32_t>(t.type));
  if (!is_supported_for_compute(t.type) || !traits)
    fail(ErrorCode::unsupported, "{}: tensor '{}' has type {}, which vramfit cannot compute with", file.name(),
         t.name, type_name(t.type));
  if (t.ne[0] % traits->block_size != 0)
    fail(ErrorCode::format, "{}: tensor '{}' rows have {} elements, not a multiple of the {} block ({})", file.name(),
         t.name, t.ne[0], type_name(t.type), traits->block_size);
  return Weight{file.data(t).data(), t.type, t.ne[0], t.n_rows(), nullptr, t.name};
}

// Norms, biases, sinks and rope factors are read element by element as floats.
Weight f32_view(const gguf::File &file, const gguf::TensorInfo &t) {
  if (t.type != GgmlType::F32)
    fail(ErrorCode::unsupported, "{}: tensor '{}' has type {}; vramfit expects F32 for it", file.name(), t.name,
         type_name(t.type));
  return view(file, t);
}


}  // namespace

TensorReader::TensorReader(const gguf::File &file, ModelInfo &info) : file_(file), info_(info) {
  const gguf::TensorInfo *embd = file.find_tensor("token_embd.weight");
  if (!embd) fail(ErrorCode::format, "{}: tensor 'token_embd.weight' is missing", file.name());
  if (embd->ne[1] <= 0 || embd->ne[1] > INT32_MAX)
    fail(ErrorCode::format, "{}: tensor 'token_embd.weight' has {} rows, not a vocabulary size", file.name(),
         embd->ne[1]);
  info.n_vocab = static_cast<int32_t>(embd->ne[1]);
}

Weight TensorReader::matrix(const std::string &name, int64_t n_in, int64_t n_out, int64_t n_expert) {
  return view(file_, *find_checked(file_, name, {n_in, n_out, n_expert}, true));
}
Weight TensorReader::vector(const std::string &name, int64_t n) {
  return f32_view(file_, *find_checked(file_, name, {n, 1, 1}, true));
}
std::optional<Weight> TensorReader::optional_vector(const std::string &name, int64_t n) {
  if (const auto *t = find_checked(file_, name, {n, 1, 1}, false)) return f32_view(file_, *t);
  return std::nullopt;
}

std::optional<Weight> TensorReader::optional_f32_matrix(const std::string &name, int64_t n_in, int64_t n_out) {
  if (const auto *t = find_checked(file_, name, {n_in, n_out, 1}, false)) return f32_view(file_, *t);
  return std::nullopt;
}

ModelWeights TensorReader::transformer(bool qk_norm) {
  ModelWeights w;
  embeddings_and_output(w);
  for (int32_t l = 0; l < info_.n_layer; ++l) {
    LayerWeights &layer = w.layers.emplace_back();
    layer.attn = attention(l, qk_norm);
    if (info_.n_expert > 0) layer.moe = moe(l);
    else layer.ffn = dense_ffn(l);
  }
  return w;
}

void TensorReader::embeddings_and_output(ModelWeights &w) {
  const int64_t n_embd = info_.n_embd;
  w.token_embd = matrix("token_embd.weight", n_embd, info_.n_vocab);
  w.output_norm = vector("output_norm.weight", n_embd);
  if (const auto *out = find_checked(file_, "output.weight", {n_embd, info_.n_vocab, 1}, false)) {
    w.output = view(file_, *out);
  } else {
    w.output = w.token_embd;  // tied embeddings
    info_.tied_output = true;
  }
  if (const auto *freqs = find_checked(file_, "rope_freqs.weight", {info_.n_rot / 2, 1, 1}, false))
    w.rope_freqs = f32_view(file_, *freqs);
}

AttentionWeights TensorReader::attention(int32_t layer, bool qk_norm) {
  const int64_t n_embd = info_.n_embd, n_q = int64_t{info_.n_head} * info_.head_dim,
                n_kv = int64_t{info_.n_head_kv} * info_.head_dim;
  auto name = [&](std::string_view t, std::string_view suffix = "weight") { return layer_tensor(layer, t, suffix); };
  AttentionWeights a;
  a.norm = vector(name("attn_norm"), n_embd);
  a.wq = matrix(name("attn_q"), n_embd, n_q);
  a.wk = matrix(name("attn_k"), n_embd, n_kv);
  a.wv = matrix(name("attn_v"), n_embd, n_kv);
  a.wo = matrix(name("attn_output"), n_q, n_embd);
  a.bq = optional_vector(name("attn_q", "bias"), n_q);
  a.bk = optional_vector(name("attn_k", "bias"), n_kv);
  a.bv = optional_vector(name("attn_v", "bias"), n_kv);
  a.bo = optional_vector(name("attn_output", "bias"), n_embd);
  a.sinks = optional_vector(name("attn_sinks"), info_.n_head);
  if (qk_norm) {
    a.q_norm = vector(name("attn_q_norm"), info_.head_dim);
    a.k_norm = vector(name("attn_k_norm"), info_.head_dim);
  }
  return a;
}

FfnWeights TensorReader::dense_ffn(int32_t layer) {
  const int64_t n_embd = info_.n_embd, n_ff = info_.n_ff;
  return FfnWeights{vector(layer_tensor(layer, "ffn_norm"), n_embd),
                    matrix(layer_tensor(layer, "ffn_gate"), n_embd, n_ff),
                    matrix(layer_tensor(layer, "ffn_up"), n_embd, n_ff),
                    matrix(layer_tensor(layer, "ffn_down"), n_ff, n_embd)};
}

MoeWeights TensorReader::moe(int32_t layer, std::string_view norm) {
  const int64_t n_embd = info_.n_embd, n_ff = info_.n_ff_exp, n_expert = info_.n_expert;
  if (file_.find_tensor(layer_tensor(layer, "ffn_gate.0")))
    fail(ErrorCode::unsupported,
         "{}: the experts are stored one tensor each ('{}'); vramfit reads the merged 3-D '{}' layout of GGUF "
         "files converted since 2024 (re-convert the model)",
         file_.name(), layer_tensor(layer, "ffn_gate.0"), layer_tensor(layer, "ffn_gate_exps"));
  MoeWeights m;
  m.norm = vector(layer_tensor(layer, norm), n_embd);
  m.router = matrix(layer_tensor(layer, "ffn_gate_inp"), n_embd, n_expert);
  if (m.router.type != GgmlType::F32)
    fail(ErrorCode::unsupported, "{}: router '{}' is {}; vramfit expects F32 (as llama.cpp's quantizer keeps it)",
         file_.name(), m.router.name, type_name(m.router.type));
  m.gate_exps = matrix(layer_tensor(layer, "ffn_gate_exps"), n_embd, n_ff, n_expert);
  m.up_exps = matrix(layer_tensor(layer, "ffn_up_exps"), n_embd, n_ff, n_expert);
  m.down_exps = matrix(layer_tensor(layer, "ffn_down_exps"), n_ff, n_embd, n_expert);
  m.router_bias = optional_vector(layer_tensor(layer, "ffn_gate_inp", "bias"), n_expert);
  m.gate_bias = optional_f32_matrix(layer_tensor(layer, "ffn_gate_exps", "bias"), n_ff, n_expert);
  m.up_bias = optional_f32_matrix(layer_tensor(layer, "ffn_up_exps", "bias"), n_ff, n_expert);
  m.down_bias = optional_f32_matrix(layer_tensor(layer, "ffn_down_exps", "bias"), n_embd, n_expert);
  m.n_expert = n_expert;
  return m;
}

void TensorReader::count(const ModelWeights &w) {
  const double active_share = info_.n_expert > 0 ? double(info_.n_expert_used) / info_.n_expert : 1.0;
  const bool tied = w.output.data == w.token_embd.data;  // then the output head reads all of it
  for (const Block &b : w.blocks())
    for (const Weight *x : b.weights) {
      const uint64_t bytes = x->bytes(), params = static_cast<uint64_t>(x->ne0 * x->ne1);
      info_.weight_bytes += bytes;
      info_.n_params += params;
      const bool embeddings = b.kind == "embeddings" && !tied;  // one row per token
      const double share = embeddings ? 1.0 / double(x->ne1) : b.kind == "experts" ? active_share : 1.0;
      info_.active_weight_bytes += static_cast<uint64_t>(double(bytes) * share);
      info_.n_active_params += static_cast<uint64_t>(double(params) * share);
    }
  if (w.rope_freqs) info_.weight_bytes += w.rope_freqs->bytes();
}

}  // namespace vramfit::model
