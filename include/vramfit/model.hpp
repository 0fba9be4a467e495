// vramfit::Model — a loaded GGUF llama model: hyper-parameters, weights (views into the memory
// map, never copied) and its tokenizer.
//
// A Model is a cheap handle: copies share one immutable loaded model, and every Context keeps the
// model it was made from alive. Any number of threads may use one Model (and make Contexts from
// it) at the same time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.hpp"
#include "vramfit/export.hpp"
#include "vramfit/offload.hpp"

namespace vramfit {

struct ModelParams {
  // Where the weights live: "auto" (cuda when built with CUDA and a GPU exists, else cpu), "cpu",
  // "cuda[:N]" or "sim[:CAPACITY]" (host memory behind a byte capacity, e.g. "sim:512M", to run
  // a GPU/CPU split without a GPU). With a device, load() plans the split (make_plan) under
  // offload.vram_budget_bytes (for sim: the capacity when 0; it must not exceed the capacity)
  // and uploads the weights the plan puts there.
  std::string device = "auto";
  // How much of the model may go to the device and how it is chosen (the planner's input).
  OffloadPolicy offload;
  // The contexts the plan reserves device memory for (the budget holds weights + KV + scratch +
  // staging together). A Context may ask for less, never more (Error(budget_exceeded)); its
  // n_ctx 0 then means this n_ctx. Unused on the CPU alone.
  int32_t n_ctx = 0;                 // 0 = the trained context length, at most 4096
  int32_t n_batch = 512;             // tokens per forward pass
  GgmlType kv_type = GgmlType::F16;  // KV cache element type: F16, F32 or Q8_0
  // Called on the loading thread with the fraction of the load done, rising from 0 to 1: 0 once
  // the file is validated, after each weight uploaded to the device (by bytes), 1 when loaded.
  // Return false to cancel: load() then frees what it made and throws Error(cancelled).
  std::function<bool(float fraction)> progress;
  // Contexts of n_ctx that will exist at the same time (a server's parallel slots): the plan
  // reserves a KV cache and scratch for each inside the budget, and load() fails with
  // Error(budget_exceeded) saying how many fit when the budget cannot hold them all.
  int32_t n_contexts = 1;
};

// The hyper-parameters read from the GGUF metadata (general.architecture: llama, qwen2, qwen3,
// qwen3moe, gpt-oss; a llama with experts is Mixtral).
struct ModelInfo {
  std::string architecture;  // "llama", "qwen2", "qwen3", "qwen3moe", "gpt-oss"
  std::string name;          // general.name, or the file name
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_ff = 0;          // dense feed-forward width (0 when every layer is MoE)
  int32_t n_expert = 0;      // experts per MoE layer (0: dense)
  int32_t n_expert_used = 0; // experts each token runs through (k)
  int32_t n_ff_exp = 0;      // feed-forward width of one expert
  int32_t n_rot = 0;         // rotated dimensions per head
  float rms_norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  // YaRN rope scaling (rope.scaling.type "yarn"; then rope_freq_scale = 1 / rope.scaling.factor):
  // pair i of a head ramps from extrapolated to interpolated angles over the correction dims
  // [rope_yarn_corr_low, rope_yarn_corr_high] (ggml_rope_yarn_corr_dims with beta_fast 32, beta_slow
  // 1 and rope.scaling.original_context_length). ext_factor 0: no YaRN.
  float rope_yarn_ext_factor = 0.0f;
  float rope_yarn_attn_factor = 1.0f;
  float rope_yarn_corr_low = 0.0f;
  float rope_yarn_corr_high = 0.0f;
  // Sliding-window attention (gpt-oss): on the windowed layers a query sees its n_swa most
  // recent keys (itself included). n_swa_pattern p: every layer il with il % p < p - 1 is
  // windowed (gpt-oss: 2, so layers 0, 2, 4...); 0 with n_swa 0: no window anywhere.
  int32_t n_swa = 0;
  int32_t n_swa_pattern = 0;
  bool tied_output = false;  // no output.weight: the output projection reuses token_embd
  uint64_t weight_bytes = 0; // bytes of every weight tensor the forward pass reads
  uint64_t n_params = 0;
  // What one token reads: every dense weight, k/n_expert of the experts, one embedding row.
  uint64_t active_weight_bytes = 0;
  uint64_t n_active_params = 0;

  // The window of layer il's attention: n_swa on a windowed layer, else 0 (all keys).
  int64_t attention_window(int32_t il) const noexcept {
    return n_swa > 0 && n_swa_pattern > 0 && il % n_swa_pattern < n_swa_pattern - 1 ? n_swa : 0;
  }
};

class VRAMFIT_API Model {
 public:
  // Maps the file and validates it: Error(io) when unreadable, Error(format) for a broken file,
  // Error(unsupported) for an architecture, tensor type or shape the engine does not implement,
  // Error(format) naming any missing tensor.
  static Model load(const std::filesystem::path &path, const ModelParams &params = {});

  const ModelInfo &info() const noexcept;
  const ModelParams &params() const noexcept;  // as loaded, less the progress callback (null)
  const std::filesystem::path &path() const noexcept;
  // The offload plan the model runs (which device holds each tensor and KV layer, bytes per
  // category); null for device "cpu" (or "auto" without a GPU). A plan that puts nothing on the
  // device is kept, with a note, but no device is created: the CPU runs the model alone.
  const Plan *plan() const noexcept;

  // ---- tokenizer ----
  // add_special: prepend BOS when the vocab asks for it; parse_special: recognise control tokens
  // such as "<s>" or "<|im_start|>" written in the text (chat prompts need it; leave it off for
  // user text). User-defined tokens ("<think>") are matched either way, as in llama.cpp.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true,
                                bool parse_special = false) const;
  std::string detokenize(std::span<const int32_t> tokens) const;
  // The bytes of one token (may be part of a UTF-8 character).
  std::string token_to_piece(int32_t token) const;

  int32_t n_vocab() const noexcept;
  int32_t n_ctx_train() const noexcept;
  int32_t bos() const noexcept;
  int32_t eos() const noexcept;
  bool is_eog(int32_t token) const noexcept;  // end of generation (EOS, EOT, ...)

  // The loaded model, for the library's own code (Context, the executor, the C ABI).
  struct Impl;
  const Impl &impl() const noexcept { return *impl_; }
  const std::shared_ptr<const Impl> &shared_impl() const noexcept { return impl_; }

 private:
  explicit Model(std::shared_ptr<const Impl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace vramfit
