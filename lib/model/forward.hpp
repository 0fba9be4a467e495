// The shared blocks every architecture's forward pass is made of, in the spirit of llama2.c's
// run.c: embed the tokens; per layer an attention block and a feed-forward block (dense SwiGLU or
// mixture of experts), each adding into the residual stream; the final norm and output head.
//
// Every op runs on the device of the weights it uses; a block has all its weights on one device
// (the experts may sit apart from their router). The residual stream follows the blocks: it is
// copied to another device only where a block lives elsewhere than the previous one.
#pragma once

#include <cstdint>
#include <optional>
#include <optional>
#include <span>
#include <vector>

#include "model/moe_routing.hpp"
#include "model/streamer.hpp"
#include "model/weights.hpp"
#include "model/workspace.hpp"
#include "vramfit/model.hpp"

namespace vramfit::model {

// gpt-oss's experts: SwiGLU with the gate clamped above and the up projection clamped both ways
// (Device::swiglu_clamped).
struct ClampedSwiglu {
  float alpha = 1.702f;
  float limit = 7.0f;
};

// One expert's weights: its matrix of each 3-D tensor and its row of each bias (gpt-oss).
struct ExpertViews {
  Weight gate, up, down;
  std::optional<Weight> gate_bias, up_bias, down_bias;
  std::vector<Weight *> present();  // the matrices, then the biases the layer has
};
ExpertViews expert_views(const MoeWeights &m, int32_t e);
void project_rows(Device &d, const Weight &w, const std::optional<Weight> &bias, const float *in, int64_t rows,
                  float *out);

class Forward {
 public:
  // One batch: tokens at positions pos0.., the logits of the last n_out of them into logits_out
  // ([n_out][n_vocab], host memory). With a streamer, every layer block runs on its device, the
  // weights of those placed elsewhere streamed in (a long prompt; see Plan::Streaming).
  Forward(const ModelInfo &info, const ModelWeights &w, Workspace &ws, std::span<const int32_t> tokens,
          int64_t pos0, int64_t n_out, float *logits_out, Streamer *streamer = nullptr);

  const ModelInfo &info() const noexcept { return info_; }
  int32_t n_layer() const noexcept { return static_cast<int32_t>(w_.layers.size()); }
  const LayerWeights &layer(int32_t l) const { return w_.layers[static_cast<size_t>(l)]; }

  // x = rows of the embedding table.
  void embed();
  // x += Wo attention(rope(norm(Wq xn + bq)), rope(norm(Wk xn + bk)), Wv xn + bv) + bo, with
  // whichever of the biases, q/k norms and sinks the layer has; window > 0: sliding window.
  void attention(int32_t l, int64_t window = 0);
  // x += W_down (silu(W_gate xn) * (W_up xn))
  void dense_ffn(int32_t l);
  // x += sum over the token's k experts of weight * expert(xn), the experts chosen by `gating`
  // from the router logits (+ its bias); each expert W_down act(W_gate xn + b_gate, W_up xn +
  // b_up) + b_down with whichever biases the layer has, act plain or clamped SwiGLU.
  void moe_ffn(int32_t l, Gating gating, std::optional<ClampedSwiglu> clamp = std::nullopt);
  // The layer's feed-forward, dense or MoE (softmax_top_k), as the layer has it.
  void feed_forward(int32_t l);
  // Final norm and output projection of the last n_out tokens, a few rows at a time.
  void output();

 private:
  Device &run_on(Device &device);  // moves the residual there
  // The device that runs a block whose weights include `w`: the streamer's when streaming.
  Device &target(const Weight &w) const;
  // `w` as `d` can read it: itself, or a copy streamed into a staging slot (use it at once).
  Weight use(const Weight &w, Device &d);
  KvLayer kv_on(Device &d, int32_t l, int64_t n_rows);
  void copy(Activations &from, const float *src, Activations &to, float *dst, int64_t n_floats);
  void project(Device &d, const Weight &w, const std::optional<Weight> &bias, const float *in, float *out);
  struct Projection {
    const Weight &w;
    const std::optional<Weight> &bias;
    float *out;
  };
  void project_all(Device &d, std::span<const Projection> projections, const float *in);
  RopeParams rope_for(Device &d, Weight &staged_factors);
  void run_expert_batches(Activations &e, const MoeWeights &m, const Routing &routing,
                          const std::optional<ClampedSwiglu> &clamp);
  void run_experts_one_token(Activations &e, const MoeWeights &m, const Routing &routing,
                             const std::optional<ClampedSwiglu> &clamp);
  void run_experts(Activations &e, const MoeWeights &m, const Routing &routing,
                   const std::optional<ClampedSwiglu> &clamp);

  const ModelInfo &info_;
  const ModelWeights &w_;
  Workspace &ws_;
  std::span<const int32_t> tokens_;
  int64_t n_;
  int64_t pos0_;
  int64_t n_out_;
  float *logits_out_;
  RopeParams rope_;
  AttentionParams attention_;
  Activations *a_ = nullptr;  // where the residual stream is now
  Streamer *streamer_ = nullptr;
};

// The transformer most architectures are: embed; per layer attention then the feed-forward
// (dense or MoE, softmax_top_k gating); the output head.
void transformer_forward(Forward &f);

// Runs tokens (positions pos0..pos0+n-1) through the model with its architecture's forward pass,
// writing into the KV cache, and stores the logits of the last n_out tokens into logits_out
// ([n_out][n_vocab], host memory). n_tokens <= ws.n_batch.
void forward(const ModelInfo &info, const ModelWeights &w, Workspace &ws, std::span<const int32_t> tokens,
             int64_t pos0, int64_t n_out, float *logits_out, Streamer *streamer = nullptr);

}  // namespace vramfit::model
