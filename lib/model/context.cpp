#include "vramfit/context.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "model/device_cpu.hpp"
#include "model/executor.hpp"
#include "model/forward.hpp"
#include "model/model_impl.hpp"
#include "model/workspace.hpp"

namespace vramfit {

using detail::fail;

struct Context::Impl {
  Model model;
  ContextParams params;
  std::unique_ptr<model::CpuDevice> cpu;
  model::ModelWeights weights;  // the model's views, each labelled with the device that runs it
  std::unique_ptr<model::Workspace> ws;  // KV cache and activations, on those devices
  std::vector<float> logits;             // [n_logits][n_vocab] of the last decode
  int32_t n_logits = 0;
  int32_t n_past = 0;
  std::vector<int32_t> tokens;  // the ids at positions 0..n_past-1 (capacity n_ctx: never reallocated)

  Impl(Model m, const ContextParams &p) : model(std::move(m)), params(p) {}
  model::Executor *executor() const noexcept { return model.impl().executor.get(); }
  void place_weights();
  void allocate_buffers();
};

namespace {

void check_params(const ContextParams &p, const ModelInfo &info) {
  // Said in the words of the setting (the CLI's -c, -b, -t and --kv-type), not the struct's.
  if (p.n_ctx < 0)
    fail(ErrorCode::invalid_argument, "context size (n_ctx) {} is negative: give 0 (the default) or more tokens",
         p.n_ctx);
  if (p.n_batch <= 0)
    fail(ErrorCode::invalid_argument, "batch size (n_batch) {} is not at least 1 token", p.n_batch);
  if (p.n_threads < 0)
    fail(ErrorCode::invalid_argument, "thread count (n_threads) {} is negative: give 0 (all cores) or more",
         p.n_threads);
  if (p.kv_type != GgmlType::F16 && p.kv_type != GgmlType::F32 && p.kv_type != GgmlType::Q8_0)
    fail(ErrorCode::invalid_argument, "KV cache type {} is not one of F16, F32, Q8_0", type_name(p.kv_type));
  const int64_t n_kv_embd = int64_t{info.n_head_kv} * info.head_dim;
  if (p.kv_type == GgmlType::Q8_0 && n_kv_embd % 32 != 0)
    fail(ErrorCode::invalid_argument,
         "KV cache type Q8_0 needs K/V rows that are a multiple of 32; this model's are {} (use F16)", n_kv_embd);
}

void check_token_ids(std::span<const int32_t> tokens, int32_t n_vocab, std::string_view caller) {
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab)
      fail(ErrorCode::invalid_argument, "{}: token id {} is outside the vocabulary [0, {})", caller, t, n_vocab);
}

}  // namespace

// A weight the model already placed on a device (uploaded per the offload plan, shared by every
// context) stays there; a weight in the memory map (device == nullptr) runs on this context's CPU.
void Context::Impl::place_weights() {
  weights = model.impl().weights;
  auto place = [&](model::Weight &w) {
    if (!w.device) w.device = cpu.get();
  };
  for (model::Weight *w : weights.all_mutable()) place(*w);
  if (weights.rope_freqs_host) place(*weights.rope_freqs_host);

  model::check_placement(weights);
}

// KV cache and activations where the weights are; on the device, exactly the plan's scratch.
void Context::Impl::allocate_buffers() {
  const ModelInfo &info = model.info();
  const int64_t n_kv_embd = int64_t{info.n_head_kv} * info.head_dim;
  std::vector<model::PlannedScratch> planned;
  if (model::Executor *ex = executor()) {
    std::lock_guard lock(ex->mutex());
    ex->check_context(params, info);
    planned.push_back({&ex->device(), ex->planned_scratch()});
    // A sim device's attention runs on its compute CPU: size that workspace now, too.
    if (ex->sim_compute()) ex->sim_compute()->reserve_attention(params.n_ctx, n_kv_embd);
  }
  ws = std::make_unique<model::Workspace>(info, weights, params.n_ctx, params.n_batch, params.kv_type, planned);
  // The CPU runs the attention of the layers whose KV cache is in host memory: its workspace is
  // needed (and sized now, so it is accounted from the start) only when there is one. A model
  // wholly on the device would otherwise hold 2 x n_ctx x n_kv_embd floats of host memory unused.
  const bool host_attention =
      std::any_of(ws->kv.begin(), ws->kv.end(), [&](const model::KvLayer &kv) { return kv.device == cpu.get(); });
  if (host_attention) cpu->reserve_attention(params.n_ctx, n_kv_embd);
}

Context::Context(Model model, const ContextParams &params) {
  check_params(params, model.info());
  impl_ = std::make_unique<Impl>(std::move(model), params);
  Impl &c = *impl_;
  const ModelInfo &info = c.model.info();
  if (c.params.n_ctx == 0) c.params.n_ctx = c.executor() ? static_cast<int32_t>(c.executor()->plan().n_ctx)
                                                         : info.n_ctx_train;
  c.params.n_batch = std::min(c.params.n_batch, c.params.n_ctx);
  c.cpu = std::make_unique<model::CpuDevice>(c.params.n_threads);
  c.params.n_threads = c.cpu->n_threads();
  c.place_weights();
  c.allocate_buffers();
  c.logits.resize(static_cast<size_t>(info.n_vocab));
  c.tokens.reserve(static_cast<size_t>(c.params.n_ctx));
}

Context::Context(Context &&) noexcept = default;
Context &Context::operator=(Context &&) noexcept = default;
Context::~Context() = default;

std::span<const float> Context::decode(std::span<const int32_t> tokens, bool all_logits) {
  Impl &c = *impl_;
  const ModelInfo &info = c.model.info();
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) fail(ErrorCode::invalid_argument, "decode: the batch is empty");
  if (c.n_past + n > c.params.n_ctx)
    fail(ErrorCode::context_full, "decode: {} tokens do not fit: {} of n_ctx = {} positions are in use",
         n, c.n_past, c.params.n_ctx);
  check_token_ids(tokens, info.n_vocab, "decode");

  const int64_t n_rows = all_logits ? n : 1;
  c.logits.resize(static_cast<size_t>(n_rows * info.n_vocab));
  c.n_logits = 0;  // invalid until this decode finishes
  // The device runs one batch at a time, whichever context it comes from.
  std::unique_lock<std::mutex> device_lock;
  if (model::Executor *ex = c.executor()) device_lock = std::unique_lock(ex->mutex());
  for (int64_t first = 0; first < n; first += c.params.n_batch) {
    const int64_t len = std::min<int64_t>(c.params.n_batch, n - first);
    const bool last_chunk = first + len == n;
    const int64_t n_out = all_logits ? len : (last_chunk ? 1 : 0);
    float *out = c.logits.data() + (all_logits ? first * info.n_vocab : 0);
    model::Streamer *streamer = c.executor() ? c.executor()->streamer_for(len) : nullptr;
    model::forward(info, c.weights, *c.ws, tokens.subspan(static_cast<size_t>(first), static_cast<size_t>(len)),
                   c.n_past, n_out, out, streamer);
    c.n_past += static_cast<int32_t>(len);
    c.tokens.insert(c.tokens.end(), tokens.begin() + first, tokens.begin() + first + len);
  }
  c.n_logits = static_cast<int32_t>(n_rows);
  return logits(-1);
}

std::span<const float> Context::logits(int32_t i) const {
  const Impl &c = *impl_;
  const int32_t n_vocab = c.model.n_vocab();
  if (c.n_logits == 0) fail(ErrorCode::invalid_argument, "logits: nothing has been decoded yet");
  if (i == -1) i = c.n_logits - 1;
  if (i < 0 || i >= c.n_logits)
    fail(ErrorCode::invalid_argument,
         "logits({}): only {} row(s) are kept from the last decode (pass all_logits to keep every token's)", i,
         c.n_logits);
  return {c.logits.data() + static_cast<size_t>(i) * n_vocab, static_cast<size_t>(n_vocab)};
}

int32_t Context::n_past() const noexcept { return impl_->n_past; }
int32_t Context::n_ctx() const noexcept { return impl_->params.n_ctx; }
int32_t Context::n_threads() const noexcept { return impl_->params.n_threads; }
const ContextParams &Context::params() const noexcept { return impl_->params; }
const Model &Context::model() const noexcept { return impl_->model; }

std::span<const int32_t> Context::tokens() const noexcept { return impl_->tokens; }

void Context::clear() noexcept {
  impl_->n_past = 0;
  impl_->n_logits = 0;
  impl_->tokens.clear();
}

int32_t Context::truncate_floor() const noexcept {
  // An empty cache resumes at 0, where every windowed cache starts over (slide_kv).
  if (impl_->n_past == 0) return 0;
  return static_cast<int32_t>(impl_->ws->resume_floor(impl_->model.info()));
}

void Context::truncate(int32_t n) {
  Impl &c = *impl_;
  if (n < 0 || n > c.n_past)
    fail(ErrorCode::invalid_argument, "truncate({}): the context holds {} tokens; keep between 0 and {}", n, c.n_past,
         c.n_past);
  if (n > 0 && n < truncate_floor())
    fail(ErrorCode::invalid_argument,
         "truncate({}): the sliding-window KV cache no longer holds the keys position {} attends to; keep at least "
         "{} tokens, or 0",
         n, n, truncate_floor());
  c.n_past = n;
  c.n_logits = 0;
  c.tokens.resize(static_cast<size_t>(n));
}

PrefixReuse Context::decode_reusing_prefix(std::span<const int32_t> sequence) {
  Impl &c = *impl_;
  const auto n = static_cast<int64_t>(sequence.size());
  if (n == 0) fail(ErrorCode::invalid_argument, "decode_reusing_prefix: the sequence is empty");
  if (n > c.params.n_ctx)
    fail(ErrorCode::context_full, "decode_reusing_prefix: {} tokens do not fit in n_ctx = {}", n, c.params.n_ctx);
  check_token_ids(sequence, c.model.n_vocab(), "decode_reusing_prefix");
  // The last token is always decoded: its logits are what the caller wants.
  const auto common = std::mismatch(c.tokens.begin(), c.tokens.end(), sequence.begin(), sequence.end() - 1);
  auto keep = static_cast<int32_t>(common.first - c.tokens.begin());
  if (keep < truncate_floor()) keep = 0;
  truncate(keep);
  PrefixReuse r;
  r.n_reused = keep;
  r.n_decoded = static_cast<int32_t>(n - keep);
  r.logits = decode(sequence.subspan(static_cast<size_t>(keep)));
  return r;
}

MemoryReport Context::memory_report() const {
  const Impl &c = *impl_;
  model::Executor *ex = c.executor();
  model::Device *device = ex ? &ex->device() : nullptr;
  // Bytes as the memory hands them out: the device's arena rounds each reservation up.
  auto reserved = [&](const model::Device *d, uint64_t bytes) {
    constexpr uint64_t a = Plan::device_alignment;
    return d == device ? (std::max<uint64_t>(bytes, 1) + a - 1) / a * a : bytes;
  };
  DeviceMemory host, dev;
  auto entry = [&](const model::Device *d) -> DeviceMemory & { return d == device ? dev : host; };
  c.weights.for_each([&](const model::Weight &w) {
    entry(w.device).weights += reserved(w.device, w.bytes());
  });
  for (const auto &kv : c.ws->kv) {
    const uint64_t bytes = kv.bytes_per_row() * static_cast<uint64_t>(kv.n_ctx);
    entry(kv.device).kv += 2 * reserved(kv.device, bytes);
  }

  // The host: this context's CPU buffers (activations, attention workspace), the logits handed
  // to the caller and the staging copy of the residual.
  const model::DeviceMemoryStats cpu = c.cpu->memory_stats();
  const uint64_t host_vectors = c.logits.capacity() * sizeof(float);
  host.device = c.cpu->name();
  host.scratch = cpu.allocated_bytes - host.kv + host_vectors;
  host.staging = c.ws->staging.capacity() * sizeof(float);
  host.peak = cpu.peak_bytes + host_vectors + host.staging;
  MemoryReport report;
  if (!ex) {
    report.devices.push_back(host);
    return report;
  }
  host.planned = ex->plan().host;

  const model::DeviceMemoryStats stats = device->memory_stats();
  dev.device = device->name();
  for (const auto &a : c.ws->per_device)
    if (a.device == device) dev.scratch = reserved(device, a.scratch_bytes);
  dev.overhead = ex->outside_arena_bytes() + ex->fixed_arena_bytes();
  dev.staging = ex->staging_arena_bytes();
  dev.peak = stats.peak_bytes + ex->outside_arena_bytes();
  dev.budget = ex->plan().budget_bytes;
  dev.planned = ex->plan().device;
  report.devices.push_back(host);
  report.devices.push_back(dev);
  return report;
}

std::string MemoryReport::to_table() const {
  std::string out = fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "memory (MB)", "weights",
                                "kv", "scratch", "staging", "overhead", "total", "peak");
  for (const DeviceMemory &d : devices) {
    const std::string name = d.device.substr(0, d.device.find(' '));
    out += fmt::format("{:<11} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}\n", name,
                       d.weights / 1e6, d.kv / 1e6, d.scratch / 1e6, d.staging / 1e6, d.overhead / 1e6,
                       d.total() / 1e6, d.peak / 1e6);
    if (d.planned.total() > 0 || d.budget > 0)
      out += fmt::format("{:<11} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}\n", "  planned",
                         d.planned.weights / 1e6, d.planned.kv / 1e6, d.planned.scratch / 1e6,
                         d.planned.staging / 1e6, d.planned.overhead / 1e6, d.planned.total() / 1e6);
    if (d.budget > 0)
      out += fmt::format("{}: peak {} bytes of a {} byte budget ({} planned)\n", d.device, d.peak, d.budget,
                         d.planned.total());
  }
  return out;
}

}  // namespace vramfit
