// model::Executor — runs an offload Plan: builds the device ModelParams.device names, plans the
// split from the file's header, uploads the weights the plan puts on the device (one arena
// reservation each) and tells each Context where its KV cache and scratch go.
//
// Every device byte comes from the device's arena, whose capacity is the budget (minus, for CUDA,
// the runtime context outside it), so nothing the library allocates can cross the budget: a
// request that would is Error(budget_exceeded) before anything is allocated.
//
// What the arena holds, per the plan: each uploaded weight, each device layer's K and V, one
// scratch reservation of exactly plan.device.scratch / plan.n_contexts per context (carved
// from it), and for CUDA the device's fixed reservations. The plan's device staging is not
// allocated: the residual is uploaded straight into the device's activations. So the arena's
// peak is plan.device.total() - staging - (CUDA context) for one context of the planned size.
//
// One Executor belongs to one Model and is shared by its Contexts; decode() holds mutex() while
// it runs, because the device (one stream, one compute thread pool) runs one batch at a time.
// A sim device's ops run on its own CpuDevice with all cores.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/device.hpp"
#include "model/device_spec.hpp"
#include "model/streamer.hpp"
#include "model/weights.hpp"
#include "vramfit/context.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/model.hpp"
#include "vramfit/offload.hpp"

namespace vramfit::model {

class CpuDevice;


// The plan's context shape from ModelParams (n_ctx 0: the trained length, at most 4096).
uint32_t planned_n_ctx(const ModelParams &params, const ModelInfo &info);
KvType to_kv_type(GgmlType type);
GgmlType to_ggml_type(KvType type);

// Calls params.progress, when set, with the fraction of the load of `file` done;
// Error(cancelled) naming the file when it returns false.
void report_progress(const ModelParams &params, const gguf::File &file, float fraction);

class Executor {
 public:
  // Returns null when the model runs on the CPU alone: device "cpu" ("auto" without a GPU), or
  // a plan that puts nothing on the device, which is then not created (no memory reserved) and
  // the plan, with a note saying so, is stored in `host_only_plan`. Otherwise plans, builds the
  // device and uploads the weights the plan places there, pointing those views at the device
  // copies and reporting progress per weight (report_progress). Error(budget_exceeded) when the
  // plan cannot fit (the message names the smallest budget that works), Error(unsupported) for
  // a plan the forward pass cannot run (a block split across devices, a KV cache apart from its
  // attention), Error(cancelled) when params.progress says stop (nothing is kept).
  static std::unique_ptr<Executor> create(const ModelParams &params, const gguf::File &file, const ModelInfo &info,
                                          ModelWeights &weights, std::optional<Plan> &host_only_plan);
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  Device &device() noexcept { return *device_; }
  const Device &device() const noexcept { return *device_; }
  const Plan &plan() const noexcept { return plan_; }
  std::mutex &mutex() noexcept { return mutex_; }
  // The CPU device that runs a sim device's ops (null for cuda).
  CpuDevice *sim_compute() noexcept { return sim_compute_.get(); }

  // Checks a context's shape against the plan and the arena before anything is allocated:
  // Error(budget_exceeded) naming the parameter to change when it needs more than planned.
  void check_context(const ContextParams &params, const ModelInfo &info) const;
  // Scratch bytes the plan reserved on the device for one context (one reservation each).
  uint64_t planned_scratch() const noexcept { return plan_.device.scratch / plan_.n_contexts; }

  // Bytes counted as the device's fixed overhead: outside the arena (the CUDA context) and the
  // device's own reservations inside it (cuBLAS workspace, ...).
  uint64_t outside_arena_bytes() const noexcept { return outside_arena_bytes_; }
  uint64_t fixed_arena_bytes() const noexcept { return fixed_arena_bytes_; }
  uint64_t weight_arena_bytes() const noexcept { return weight_arena_bytes_; }
  // Arena bytes of the prompt-streaming slots and KV copy (the plan's device staging).
  uint64_t staging_arena_bytes() const noexcept { return staging_arena_bytes_; }

  // The streamer a batch of n_tokens uses: null unless the plan streams batches that long.
  Streamer *streamer_for(int64_t n_tokens) noexcept {
    return streamer_ && n_tokens >= plan_.streaming.min_batch ? streamer_.get() : nullptr;
  }

 private:
  Executor() = default;
  void upload_weights(ModelWeights &weights, const ModelParams &params, const gguf::File &file);
  void allocate_streaming();

  Plan plan_;
  std::unique_ptr<CpuDevice> sim_compute_;
  std::unique_ptr<Device> device_;
  std::vector<void *> uploaded_;
  uint64_t outside_arena_bytes_ = 0;
  uint64_t fixed_arena_bytes_ = 0;
  uint64_t weight_arena_bytes_ = 0;
  uint64_t staging_arena_bytes_ = 0;
  std::unique_ptr<Streamer> streamer_;  // destroyed before the device
  std::mutex mutex_;
};

}  // namespace vramfit::model
