#include "model/executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "common/error.hpp"
#include "common/log.hpp"
#include "model/arena.hpp"
#include "model/device_cpu.hpp"
#include "model/device_sim.hpp"
#include "offload/memory_model.hpp"
#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
#include "cuda/runtime.hpp"
#include "model/device_cuda.hpp"
#endif

namespace vramfit::model {

using detail::fail;

namespace {

using offload::arena_bytes;

// The forward pass runs a block (attention with its KV cache, feed-forward, router, experts,
// output head) on one device: refuse a plan that splits one, naming the tensors, before any byte
// is uploaded.
void check_plan_runs(const Plan &plan, const ModelWeights &w) {
  for (const Block &block : w.blocks()) {
    const Weight &first = *block.weights.front();
    const Location where = plan.location_of(first.name);
    for (const Weight *other : block.weights)
      if (plan.location_of(other->name) != where)
        fail(ErrorCode::unsupported,
             "the offload plan puts '{}' on the {} and '{}' on the {}, but the forward pass runs each block "
             "({} of layer {}) on one device; make the -ot rules name whole blocks",
             first.name, to_string(where), other->name, to_string(plan.location_of(other->name)), block.kind,
             block.layer);
    if (block.kind == "attention" && plan.kv[static_cast<size_t>(block.layer)].location != where)
      fail(ErrorCode::unsupported,
           "the offload plan puts layer {}'s KV cache on the {} and its attention on the {}; the executor runs "
           "attention where its KV cache is, so only the KV placement 'follow' (each layer's KV cache with its attention; "
           "--kv-placement follow) can run",
           block.layer, to_string(plan.kv[static_cast<size_t>(block.layer)].location), to_string(where));
  }
}

bool places_anything_on_device(const Plan &plan) {
  auto on_device = [](const auto &item) { return item.location == Location::device; };
  return std::any_of(plan.tensors.begin(), plan.tensors.end(), on_device) ||
         std::any_of(plan.kv.begin(), plan.kv.end(), on_device);
}

// A plan that puts nothing on the device needs no device: rather than reserve a budget that would
// hold nothing, keep the plan alone (saying why) and run on the CPU.
bool keep_if_host_only(Plan &plan, std::optional<Plan> &host_only_plan, const gguf::File &file) {
  if (places_anything_on_device(plan)) return false;
  plan.notes.push_back(fmt::format("no tensor and no KV layer is placed on the device, so it is not created and "
                                   "none of the {} byte budget is reserved: the CPU runs the model",
                                   plan.budget_bytes));
  detail::log_info("{}: {}", file.name(), plan.notes.back());
  host_only_plan = std::move(plan);
  return true;
}

// Offload was asked for (a budget, a layer count, rules, a strategy) but "auto" found no GPU: say
// so once, with the reason, rather than run on the CPU without a word.
void warn_if_offload_ignored(const ModelParams &params, const gguf::File &file) {
  const OffloadPolicy &p = params.offload;
  const bool asked = p.vram_budget_bytes > 0 || p.n_gpu_layers >= 0 || !p.rules.empty() ||
                     p.strategy != OffloadStrategy::fastest || p.kv_placement == KvPlacement::device;
  if (params.device != "auto" || !asked) return;
  const char *why = built_with_cuda() ? "no CUDA device is usable (no GPU, no driver, or a driver too old for this build)"
                                : "this vramfit was built without CUDA";
  detail::log_warn("{}: offload to a GPU was asked for, but {}: the whole model runs on the CPU", file.name(), why);
}

PlanRequest plan_request(const ModelParams &params, const ModelInfo &info) {
  if (params.n_batch <= 0)
    fail(ErrorCode::invalid_argument, "batch size (n_batch) {} is not at least 1 token", params.n_batch);
  if (params.n_ctx < 0)
    fail(ErrorCode::invalid_argument, "context size (n_ctx) {} is negative: give 0 (the default) or more tokens",
         params.n_ctx);
  if (params.n_contexts <= 0)
    fail(ErrorCode::invalid_argument, "number of contexts (n_contexts) {} is not at least 1", params.n_contexts);
  PlanRequest request;
  request.n_contexts = static_cast<uint32_t>(params.n_contexts);
  request.n_ctx = planned_n_ctx(params, info);
  request.n_batch = std::min(static_cast<uint32_t>(params.n_batch), request.n_ctx);
  request.kv_type = to_kv_type(params.kv_type);
  request.policy = params.offload;
  return request;
}

}  // namespace

uint32_t planned_n_ctx(const ModelParams &params, const ModelInfo &info) {
  if (params.n_ctx > 0) return static_cast<uint32_t>(params.n_ctx);
  return static_cast<uint32_t>(std::min(info.n_ctx_train, 4096));
}

GgmlType to_ggml_type(KvType type) {
  switch (type) {
    case KvType::f16: return GgmlType::F16;
    case KvType::f32: return GgmlType::F32;
    case KvType::q8_0: return GgmlType::Q8_0;
  }
  return GgmlType::F16;
}

KvType to_kv_type(GgmlType type) {
  switch (type) {
    case GgmlType::F16: return KvType::f16;
    case GgmlType::F32: return KvType::f32;
    case GgmlType::Q8_0: return KvType::q8_0;
    default: break;
  }
  fail(ErrorCode::invalid_argument, "KV type {} is not one of F16, F32, Q8_0", type_name(type));
}

void report_progress(const ModelParams &params, const gguf::File &file, float fraction) {
  if (params.progress && !params.progress(fraction))
    fail(ErrorCode::cancelled, "{}: loading cancelled at {:.0f}%: the progress callback returned false", file.name(),
         fraction * 100);
}

std::unique_ptr<Executor> Executor::create(const ModelParams &params, const gguf::File &file,
                                           const ModelInfo &info, ModelWeights &weights,
                                           std::optional<Plan> &host_only_plan) {
  const DeviceSpec spec = parse_device(params.device);
  if (spec.kind == DeviceKind::cpu) {
    warn_if_offload_ignored(params, file);
    return nullptr;
  }

  std::unique_ptr<Executor> ex(new Executor());
  PlanRequest request = plan_request(params, info);
  MachineProfile &machine = request.machine;
  if (spec.kind == DeviceKind::sim) {
    uint64_t &budget = request.policy.vram_budget_bytes;
    if (budget == 0) budget = spec.capacity;
    if (budget == 0)
      fail(ErrorCode::invalid_argument, "device 'sim' needs a capacity (sim:512M) or a VRAM budget");
    if (spec.capacity > 0 && budget > spec.capacity)
      fail(ErrorCode::invalid_argument, "the VRAM budget {} bytes is larger than the device '{}' ({} bytes)", budget,
           params.device, spec.capacity);
    // A sim device has no runtime context and no fixed reservations: its arena is the budget.
    machine.device_memory_bytes = std::max(spec.capacity, budget);
    machine.device_fixed_overhead_bytes = 0;
    machine.measured.device_fixed_overhead = true;
    ex->plan_ = make_plan(file, request);
    check_plan_runs(ex->plan_, weights);
    if (keep_if_host_only(ex->plan_, host_only_plan, file)) return nullptr;
    ex->sim_compute_ = std::make_unique<CpuDevice>(0);
    ex->device_ = std::make_unique<SimDevice>(*ex->sim_compute_, ex->plan_.budget_bytes);
  } else {
#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
    CudaDeviceConfig config;
    config.device_index = spec.index;
    const cuda::FixedOverhead measured = cuda::measure_fixed_overhead(spec.index);
    ex->outside_arena_bytes_ = measured.context_bytes + measured.cublas_bytes;
    ex->fixed_arena_bytes_ = CudaDevice::fixed_reservation_bytes(config);
    machine.device_memory_bytes = measured.total_bytes;
    // Free memory as if our context did not exist yet: the budget counts it as overhead.
    machine.device_free_bytes = measured.free_bytes + ex->outside_arena_bytes_;
    machine.measured.device_memory = true;
    machine.device_fixed_overhead_bytes = ex->outside_arena_bytes_ + ex->fixed_arena_bytes_;
    machine.measured.device_fixed_overhead = true;
    ex->plan_ = make_plan(file, request);
    check_plan_runs(ex->plan_, weights);
    if (keep_if_host_only(ex->plan_, host_only_plan, file)) return nullptr;
    config.budget_bytes = ex->plan_.budget_bytes - ex->outside_arena_bytes_;
    ex->device_ = std::make_unique<CudaDevice>(config);
#endif
  }
  detail::log_info("{}: offload plan ({}): {} of {} bytes of the budget on {}, {} of {} layers entirely there",
                   file.name(), ex->plan_.chosen_by, ex->plan_.device.total(), ex->plan_.budget_bytes,
                   ex->device_->name(), ex->plan_.n_device_layers, ex->plan_.n_layer);
  ex->upload_weights(weights, params, file);
  ex->allocate_streaming();
  return ex;
}

// One arena reservation per tensor the plan puts on the device; the views then point there.
// Progress is the fraction of the device's weight bytes uploaded (a cancel unwinds through
// ~Executor, which frees every copy made so far).
void Executor::upload_weights(ModelWeights &weights, const ModelParams &params, const gguf::File &file) {
  std::map<std::string_view, const void *> uploaded;  // by name: a tied output reuses token_embd's
  const std::optional<Weight> rope_freqs_host = weights.rope_freqs;
  const uint64_t total_bytes = std::max<uint64_t>(plan_.device.weights, 1);
  for (Weight *w : weights.all_mutable()) {
    if (plan_.location_of(w->name) != Location::device) continue;
    auto [it, fresh] = uploaded.try_emplace(w->name, nullptr);
    if (fresh) {
      const uint64_t bytes = w->bytes();
      void *copy = device_->allocate(bytes, w->name);
      uploaded_.push_back(copy);
      device_->upload(copy, w->data, bytes);
      weight_arena_bytes_ += arena_bytes(bytes);
      it->second = copy;
      report_progress(params, file, static_cast<float>(std::min(1.0, double(weight_arena_bytes_) / total_bytes)));
    }
    w->data = it->second;
    w->device = device_.get();
  }
  device_->synchronize();
  // Blocks on the host read the rope factors from the map.
  if (weights.rope_freqs && weights.rope_freqs->device) weights.rope_freqs_host = rope_freqs_host;
}

// The plan's staging: two slots for streamed weights and a device copy of one host layer's KV.
void Executor::allocate_streaming() {
  const Plan::Streaming &st = plan_.streaming;
  if (!st.enabled) return;
  uint64_t kv_bytes = 0;  // K (or V) of the layer with the most rows: the copy serves every host layer
  if (st.kv_bytes > 0)
    for (const PlannedKvLayer &kv : plan_.kv) kv_bytes = std::max(kv_bytes, kv.k_bytes);
  const uint64_t before = device_->memory_stats().allocated_bytes;
  streamer_ = std::make_unique<Streamer>(*device_, st.slot_bytes, kv_bytes);
  staging_arena_bytes_ = device_->memory_stats().allocated_bytes - before;
  detail::log_info("{}: prompts of {} tokens or more stream host weights through {} bytes of staging", device_->name(),
                   st.min_batch, staging_arena_bytes_);
}

Executor::~Executor() {
  streamer_.reset();
  for (void *p : uploaded_) device_->deallocate(p);
}

void Executor::check_context(const ContextParams &params, const ModelInfo &info) const {
  auto exceeds = [&](std::string_view what, auto asked, auto planned) {
    fail(ErrorCode::budget_exceeded,
         "a {} of {} tokens exceeds the {} the offload plan sized the device's KV cache and scratch for when "
         "the model was loaded; ask for at most {}, or load the model for {}",
         what, asked, planned, planned, asked);
  };
  if (static_cast<uint32_t>(params.n_ctx) > plan_.n_ctx) exceeds("context (n_ctx)", params.n_ctx, plan_.n_ctx);
  if (static_cast<uint32_t>(params.n_batch) > plan_.n_batch)
    exceeds("batch (n_batch)", params.n_batch, plan_.n_batch);
  const int64_t n_kv = int64_t{info.n_head_kv} * info.head_dim;
  const bool kv_on_device = std::any_of(plan_.kv.begin(), plan_.kv.end(),
                                        [](const PlannedKvLayer &kv) { return kv.location == Location::device; });
  if (kv_on_device && row_bytes(params.kv_type, n_kv) > row_bytes(to_ggml_type(plan_.kv_type), n_kv))
    exceeds("kv_type", type_name(params.kv_type), to_string(plan_.kv_type));

  uint64_t needed = planned_scratch();
  for (const PlannedKvLayer &kv : plan_.kv) {
    const uint64_t rows = offload::kv_rows(info.attention_window(kv.layer), params.n_ctx, params.n_batch);
    if (kv.location == Location::device) needed += 2 * arena_bytes(row_bytes(params.kv_type, n_kv) * rows);
  }
  const DeviceMemoryStats stats = device_->memory_stats();
  const uint64_t free_bytes = stats.budget_bytes - stats.allocated_bytes;
  if (needed > free_bytes)
    fail(ErrorCode::budget_exceeded,
         "{}: a context needs {} bytes of the device (KV cache and scratch at n_ctx={}, n_batch={}) but only {} of "
         "its {} are free ({} in use: weights and other contexts); free another context or plan a smaller one",
         device_->name(), needed, params.n_ctx, params.n_batch, free_bytes, stats.budget_bytes,
         stats.allocated_bytes);
}

}  // namespace vramfit::model
