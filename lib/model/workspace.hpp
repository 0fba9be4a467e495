// Everything a forward pass needs besides the weights: activations on every device a block runs
// on, each layer's KV cache on the device of its attention block, and the host buffers the router
// and the residual's moves between devices use.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "model/moe_routing.hpp"
#include "model/weights.hpp"
#include "offload/memory_model.hpp"
#include "vramfit/model.hpp"

namespace vramfit::model {

// Per-context buffers of one device for a batch of up to n_batch tokens: the buffers of
// offload::Activation, carved from one allocation.
struct Activations {
  Device *device = nullptr;
  float *x = nullptr;        // residual stream [n_batch][n_embd]
  float *xb = nullptr;       // normed input / projection output [n_batch][max(n_embd, n_q)]
  float *q = nullptr;        // [n_batch][n_head*head_dim]
  float *k = nullptr;        // [n_batch][n_head_kv*head_dim]
  float *v = nullptr;
  float *attn = nullptr;     // attention output [n_batch][n_head*head_dim]
  float *gate = nullptr;     // [n_batch][n_ff] (dense or one expert's)
  float *up = nullptr;
  float *router = nullptr;   // router logits [n_batch][n_expert]
  float *moe_in = nullptr;   // one expert's tokens [n_batch][n_embd]
  float *moe_out = nullptr;  // their down projection
  float *slots = nullptr;    // weighted expert outputs [n_expert_used][n_batch][n_embd]
  float *logits = nullptr;   // [n_logits_rows][n_vocab]
  uint64_t scratch_bytes = 0;  // the one allocation every buffer above is carved from
};

// A device whose activations must come out of one reservation of exactly `bytes` (the offload
// plan's scratch), so the arena hands out what the plan lists.
struct PlannedScratch {
  const Device *device = nullptr;
  uint64_t bytes = 0;
};

offload::ActivationDims activation_dims(const ModelInfo &info);

// It allocates every buffer through the devices (so each is accounted there) and frees them when
// destroyed; on an error, it frees what it had allocated before rethrowing.
class Workspace {
 public:
  // `w` must be placed: every weight has its device, and each block's weights share one.
  // Error(internal) when a planned scratch is smaller than the activations need.
  Workspace(const ModelInfo &info, const ModelWeights &w, int64_t n_ctx, int64_t batch, GgmlType kv_type,
            std::span<const PlannedScratch> planned_scratch = {});
  ~Workspace();
  Workspace(const Workspace &) = delete;
  Workspace &operator=(const Workspace &) = delete;

  Activations &on(Device &device);
  // Makes room in layer's cache for tokens pos0..pos0+n_tokens-1 and returns the position its row
  // 0 holds (the batch's rows start at pos0 minus that). Only a windowed layer's cache (smaller
  // than n_ctx) ever slides. Error(invalid_argument) when pos0 went back past what it still holds.
  int64_t slide_kv(int32_t layer, int64_t pos0, int64_t n_tokens, int64_t window);
  // The smallest position p > 0 a sequence cut back to p tokens can resume at (slide_kv accepts
  // pos0 = p): a windowed cache that has slid holds only its window's keys from the slide on.
  int64_t resume_floor(const ModelInfo &info) const;

  std::vector<Activations> per_device;
  std::vector<KvLayer> kv;    // one per layer
  std::vector<int64_t> kv_first_pos;  // per layer: the position row 0 of its cache holds
  int64_t n_batch = 0;        // tokens per forward pass at most
  int64_t n_logits_rows = 0;  // rows of logits computed per output matmul
  std::vector<float> staging; // host copy of an activation moving between devices
  std::vector<float> router_logits;  // host copy of the router's output [n_batch][n_expert]
  // Called with each MoE layer's routing of the batch, when set (tests and debugging).
  std::function<void(int32_t layer, const Routing &routing)> on_routing;

 private:
  void allocate_activations(Activations &a, const ModelInfo &info, bool holds_output,
                            std::span<const PlannedScratch> planned_scratch);
  void *allocate_bytes(Device &device, uint64_t n, std::string_view purpose);
  std::vector<std::pair<Device *, void *>> allocations_;
  std::vector<std::byte> kv_staging;  // host copy of the rows a sliding cache keeps
};

}  // namespace vramfit::model
