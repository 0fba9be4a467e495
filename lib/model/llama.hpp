// The llama architecture: hyper-parameters and weight views read from a GGUF file, and the
// forward pass over them (forward.cpp).
//
// Weights are model::Weight views. In the loaded Model they point into the memory map and have no
// device (device == nullptr means "host memory of the model"); a Context copies the table and
// sets each weight's device to the one that runs its ops (see place_on()).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <span>
#include <vector>

#include "model/device.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/model.hpp"

namespace vramfit::model {

struct LayerWeights {
  Weight attn_norm, wq, wk, wv, wo;
  Weight ffn_norm, w_gate, w_up, w_down;

  template <class F>
  void for_each(F &&f) {
    for (Weight *w : {&attn_norm, &wq, &wk, &wv, &wo, &ffn_norm, &w_gate, &w_up, &w_down}) f(*w);
  }
  template <class F>
  void for_each(F &&f) const {
    for (const Weight *w : {&attn_norm, &wq, &wk, &wv, &wo, &ffn_norm, &w_gate, &w_up, &w_down}) f(*w);
  }
};

struct LlamaWeights {
  Weight token_embd;   // [n_vocab][n_embd]
  Weight output_norm;  // [n_embd]
  Weight output;       // [n_vocab][n_embd]; token_embd's view when tied
  std::optional<Weight> rope_freqs;  // [n_rot/2] Llama-3 frequency factors
  // The map's view of rope_freqs when the executor uploaded it: for blocks that run on the host.
  std::optional<Weight> rope_freqs_host;
  std::vector<LayerWeights> layers;

  // Every weight once (a tied output is not counted twice).
  template <class F>
  void for_each(F &&f) const {
    f(token_embd);
    f(output_norm);
    if (output.data != token_embd.data) f(output);
    if (rope_freqs) f(*rope_freqs);
    for (const auto &layer : layers) layer.for_each(f);
  }
};

// Reads and validates the hyper-parameters (general.architecture must be "llama").
ModelInfo read_llama_info(const gguf::File &file);
// Finds every weight, checking its shape and type against `info`; Error(format) names a missing
// or mis-shaped tensor, Error(unsupported) a type the kernels do not implement.
LlamaWeights read_llama_weights(const gguf::File &file, ModelInfo &info);

// Per-context buffers of one device for a batch of up to n_batch tokens.
struct Activations {
  Device *device = nullptr;
  float *x = nullptr;       // residual stream [n_batch][n_embd]
  float *xb = nullptr;      // normed input / projection output [n_batch][n_embd]
  float *q = nullptr;       // [n_batch][n_head*head_dim]
  float *k = nullptr;       // [n_batch][n_head_kv*head_dim]
  float *v = nullptr;
  float *attn = nullptr;    // attention output [n_batch][n_head*head_dim]
  float *gate = nullptr;    // [n_batch][n_ff]
  float *up = nullptr;
  float *logits = nullptr;  // [n_logits_rows][n_vocab]
  uint64_t scratch_bytes = 0;  // the one allocation every buffer above is carved from
};

// A device whose activations must come out of one reservation of exactly `bytes` (the offload
// plan's scratch), so the arena hands out what the plan lists.
struct PlannedScratch {
  const Device *device = nullptr;
  uint64_t bytes = 0;
};

// Everything a forward pass needs besides the weights: activations on every device a block runs
// on (one allocation per device, carved into buffers), and each layer's KV cache (K and V, one
// allocation each) on the device of its attention block. It allocates every buffer through those
// devices (so each is accounted there) and frees them when destroyed; on an error, it frees what
// it had allocated before rethrowing.
class Workspace {
 public:
  // `w` must be placed: every weight has its device, and each block's weights share one.
  // Error(internal) when a planned scratch is smaller than the activations need.
  Workspace(const ModelInfo &info, const LlamaWeights &w, int64_t n_ctx, int64_t batch, GgmlType kv_type,
            std::span<const PlannedScratch> planned_scratch = {});
  ~Workspace();
  Workspace(const Workspace &) = delete;
  Workspace &operator=(const Workspace &) = delete;

  Activations &on(Device &device);

  std::vector<Activations> per_device;
  std::vector<KvLayer> kv;    // one per layer
  int64_t n_batch = 0;        // tokens per forward pass at most
  int64_t n_logits_rows = 0;  // rows of logits computed per output matmul
  std::vector<float> staging; // host copy of the residual when it moves between devices

 private:
  void allocate_activations(Activations &a, const ModelInfo &info, bool holds_output,
                            std::span<const PlannedScratch> planned_scratch);
  void *allocate_bytes(Device &device, uint64_t n, std::string_view purpose);
  std::vector<std::pair<Device *, void *>> allocations_;
};

// Throws Error(unsupported) unless each block's weights (attention, feed-forward, output head)
// share one device, as forward() needs.
void check_placement(const LlamaWeights &w);

// Runs tokens (positions pos0..pos0+n-1) through the model, writing into the KV cache, and
// stores the logits of the last n_out tokens into logits_out ([n_out][n_vocab], host memory).
// n_tokens <= ws.n_batch.
void forward(const ModelInfo &info, const LlamaWeights &w, Workspace &ws,
             std::span<const int32_t> tokens, int64_t pos0, int64_t n_out, float *logits_out);

}  // namespace vramfit::model
