// The offload planner: which tensors and KV-cache layers live on the GPU, under an exact byte budget.
//
// make_plan() is a pure function of a model's header (never its tensor data), a policy and a few
// machine facts. It returns a Plan that lists every device byte vramfit will allocate — weights,
// KV cache, scratch, staging and the device's fixed overhead — and predicts prompt (pp) and
// generation (tg) tokens/s from a small cost model with named inputs (MachineProfile).
//
// The promise: plan.device.total() <= plan.budget_bytes, always. The executor allocates exactly
// what the plan lists through one arena, every reservation rounded up to Plan::device_alignment
// (as model::Arena and cudaMalloc do). The device overhead is the part vramfit does not list
// tensor by tensor: the CUDA context (outside the arena) plus the device's own fixed arena
// reservations (model::CudaDevice::fixed_reservation_bytes: cuBLAS workspace, f16 matmul scratch,
// token staging). So the arena is budget_bytes - (CUDA context) bytes, and everything fits in it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.hpp"
#include "vramfit/export.hpp"
#include "vramfit/types.hpp"

namespace vramfit {

// Parses a byte size as users write budgets: "11.5GiB", "12GB", "800 MiB", "4096". Units:
// b, k/kb, m/mb, g/gb, t/tb (powers of 1000) and kib, mib, gib, tib (powers of 1024), any case,
// after optional spaces; a fraction is rounded to the nearest byte. std::nullopt when malformed,
// out of range, or a fraction of a byte count ("11.5" or "11.5b": no such size). Thread-safe.
VRAMFIT_API std::optional<uint64_t> parse_size(std::string_view text);

namespace gguf {
class File;
}

// Every strategy places blocks the forward pass runs on one device: a layer's attention (its
// norms, q/k/v/output with their biases and q/k norms, and its KV cache when that follows the
// layer), its feed-forward (ffn_norm with ffn_gate/up/down, or with the MoE router ffn_gate_inp),
// its expert group (ffn_{gate,up,down}_exps), the output head (output_norm + output), token_embd.
enum class OffloadStrategy {
  // Maximize predicted speed: greedy over those blocks by predicted time saved per device byte
  // (an expert group saves what a token reads of it, k/N of its bytes, so attention, KV cache,
  // router, norms and the output head come before experts); the best whole-layer plan instead
  // when that is predicted at least as fast.
  fastest,
  // Whole layers front to back, then the output head (token_embd stays on the host), like
  // llama.cpp's -ngl: n_gpu_layers of them, or (-1) the fastest count that fits, which is as many
  // as fit unless a tiny layer saves less than its transfers cost.
  layers,
  manual,  // what the rules and/or n_gpu_layers say, block by block (see OffloadPolicy)
};
// follow_layer: each layer's K and V go where its attention goes (its attn_q, for manual).
enum class KvPlacement { follow_layer, host, device };
enum class KvType { f16, f32, q8_0 };

// llama.cpp --override-tensor: `pattern` is an ECMAScript regex searched in the tensor name
// (std::regex_search); the first rule that matches decides.
struct OffloadRule {
  std::string pattern;
  bool to_device = true;
};

struct OffloadPolicy {
  uint64_t vram_budget_bytes = 0;  // hard cap for everything vramfit allocates on the device;
                                   // 0 = free device memory minus reserve_bytes
  uint64_t reserve_bytes = 512ull << 20;
  OffloadStrategy strategy = OffloadStrategy::fastest;
  // layers: explicit whole-layer count (-1 = the fastest that fits); manual: layers [0, n) go to
  // the device, n > n_layer also puts the output head there (-1 = no layer by count, rules only).
  int32_t n_gpu_layers = -1;
  // manual: applied before the layer count. A rule places the block of each tensor it names: a
  // tensor no rule names (a norm, a bias) goes where the named tensors of its block go (ffn_norm:
  // with the router in a MoE layer), and rules naming one block's tensors for both sides are an
  // Error(invalid_argument). Blocks no rule names go by the layer count; rope_freqs & co no rule
  // names go to the device when it runs any stage.
  std::vector<OffloadRule> rules;
  KvPlacement kv_placement = KvPlacement::follow_layer;
  // Stream host-placed weights to the device for long prompts when the cost model predicts it
  // pays (see Plan::Streaming); false: every block runs where it lives.
  bool stream_prefill = true;
  uint32_t min_ctx = 0;  // > 0: the planner may shrink n_ctx down to this to fit, and says so
  // Mixture-of-experts models, as llama.cpp's --cpu-moe / --n-cpu-moe N: every layer's expert
  // group (ffn_{gate,up,down}_exps), or those of layers [0, n_cpu_moe), stay on the host, whatever
  // the strategy, the layer count or the rules say. No effect on dense models.
  bool cpu_moe = false;
  int32_t n_cpu_moe = 0;
};

// How fast the host's matrix kernels run one weight type, at the planned thread count. A tensor
// of a type without a rate costs the roofline: bytes / host_read_bandwidth, flops / host_flops.
struct HostKernelRate {
  // One token (y = W x, the matrix streamed from RAM): weight bytes per second. The host part of
  // generation costs bytes / min(host_read_bandwidth, this).
  double matvec_bytes_per_s = 0;
  // A prompt batch (tens of tokens: compute bound): flop/s, two per weight per token.
  double matmul_flops = 0;
};

// Inputs of the memory and cost models. The defaults describe a desktop with a 12 GB
// RTX 3060-class card on PCIe 4.0 x16; the CLI overrides what it can measure.
struct MachineProfile {
  double host_read_bandwidth = 40e9;           // B/s: dual-channel DDR4/DDR5, all cores reading
  double device_read_bandwidth = 360e9;        // B/s: RTX 3060 12 GB (GDDR6, 192-bit)
  double host_to_device_bandwidth = 25e9;      // B/s: PCIe 4.0 x16, pinned memory
  double transfer_latency_s = 10e-6;           // s per host<->device copy (launch + sync)
  double host_flops = 0.5e12;                  // flop/s: 8-16 cores, SIMD quantized dot products
  double device_flops = 25e12;                 // flop/s: what llama.cpp reaches on a 3060 at pp512
  uint64_t device_memory_bytes = 12ull << 30;  // total device memory (0 = unknown)
  uint64_t device_free_bytes = 0;              // free now (0 = unknown: use device_memory_bytes)
  // CUDA context (~340 MiB on recent drivers: the drop in free memory at initialisation) + the
  // device's fixed arena reservations (CudaDevice: 4 MiB cuBLAS workspace + 32 MiB f16 matmul
  // scratch + token staging). The executor measures the context on a real device and sets
  // measured.device_fixed_overhead.
  uint64_t device_fixed_overhead_bytes = 384ull << 20;
  uint64_t host_memory_bytes = 0;     // MemTotal (0 = unknown)
  uint64_t host_available_bytes = 0;  // MemAvailable (0 = unknown: host fit not checked)
  // Per weight type: the host's kernel speed (measure_host_kernels); empty = the roofline above.
  std::map<GgmlType, HostKernelRate> host_kernels;
  // flop/s of the host's attention (scores, softmax, weighted sum over the KV cache), far below
  // its matmul rate; 0 = host_flops. Measured with host_kernels.
  double host_attention_flops = 0;

  struct Measured {  // which inputs were measured rather than defaulted
    bool host_read_bandwidth = false;
    bool device_read_bandwidth = false;
    bool host_to_device_bandwidth = false;
    bool host_flops = false;
    bool device_flops = false;
    bool device_memory = false;
    bool device_fixed_overhead = false;
    bool host_memory = false;
    bool host_kernels = false;
  } measured;
  // Which inputs the caller set on purpose (the CLI's --device-memory, --host-bandwidth...). An
  // input neither measured nor given is an assumption (the defaults above), and plans say so.
  Measured given;
};

// Fills host_memory_bytes / host_available_bytes from /proc/meminfo (unchanged where absent).
VRAMFIT_API void probe_host_memory(MachineProfile &machine);
// Measures host read bandwidth with all hardware threads streaming a buffer of `bytes` bytes
// (about 0.1 s for the default; the best of five passes) and stores it in `machine`.
VRAMFIT_API void measure_host_read_bandwidth(MachineProfile &machine, uint64_t bytes = 256ull << 20);

// What the planner needs of a model: hyper-parameters and the tensor list (name, type, shape,
// bytes). from_gguf() reads it from a header; tests build shapes directly.
struct ModelShape {
  struct Tensor {
    std::string name;  // "blk.3.attn_q.weight", "token_embd.weight", ...
    GgmlType type = GgmlType::F32;
    int64_t n_elements = 0;
    int64_t row_length = 0;  // ne[0]
    uint64_t bytes = 0;      // exact GGUF data size
  };
  std::string architecture = "llama";
  uint32_t n_layer = 0;
  uint32_t n_embd = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;  // n_embd / n_head unless the file says otherwise
  uint32_t n_ff = 0;  // the dense feed-forward width (0 when a MoE file does not give one)
  // Mixture of experts (0 for a dense model): each token runs n_expert_used of the n_expert
  // experts of a layer, each expert a SwiGLU of width n_ff_exp.
  uint32_t n_expert = 0;       // <arch>.expert_count
  uint32_t n_expert_used = 0;  // <arch>.expert_used_count
  uint32_t n_ff_exp = 0;       // <arch>.expert_feed_forward_length; n_ff when absent (Mixtral)
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  // Sliding-window attention (gpt-oss: <arch>.attention.sliding_window, every other layer from
  // layer 0): a windowed layer's KV cache holds only the window and one batch (see
  // offload::kv_rows). 0: every layer attends to the whole context.
  uint32_t n_swa = 0;
  uint32_t n_swa_pattern = 0;  // layer il is windowed when il % n_swa_pattern < n_swa_pattern - 1
  std::vector<Tensor> tensors;

  // Throws Error(format) naming the missing key / tensor, or an expert count that makes no sense.
  VRAMFIT_API static ModelShape from_gguf(const gguf::File &file);
  uint64_t n_embd_kv() const noexcept { return uint64_t{n_head_kv} * head_dim; }  // never wraps
  // The attention window of layer il (0: the whole context).
  uint32_t attention_window(uint32_t il) const noexcept {
    return n_swa > 0 && n_swa_pattern > 0 && il % n_swa_pattern < n_swa_pattern - 1 ? n_swa : 0;
  }
  bool is_moe() const noexcept { return n_expert > 0; }
  // The fraction of a layer's expert weights one token reads: n_expert_used / n_expert (0 if dense).
  double expert_fraction() const noexcept { return n_expert ? double(n_expert_used) / n_expert : 0.0; }
};

// A model's weights in all and as one generated token reads them ("active"): every tensor, but of
// each expert tensor the k/N (n_expert_used / n_expert) a token selects, and of token_embd one row
// (the lookup; all of it when it is also the output projection).
struct WeightCounts {
  uint64_t params = 0;
  uint64_t bytes = 0;
  uint64_t expert_params = 0;  // of params, in expert tensors
  uint64_t expert_bytes = 0;
  double active_params = 0;
  double active_bytes = 0;  // bytes read per generated token, the KV cache aside
};
VRAMFIT_API WeightCounts count_weights(const ModelShape &model);

// A matrix the CPU kernels multiply: its weight type and shape (one expert's, for expert tensors).
struct KernelShape {
  GgmlType type = GgmlType::F32;
  int64_t row_length = 4096;  // n_in: a multiple of the type's block size
  int64_t rows = 4096;        // n_out
  int64_t tokens = 64;        // of a prompt batch's product: an expert sees only its share of them
};
// Each matrix type of a model once, in the shape that holds most of its bytes: the kernels' speed
// depends on it (a short row pays its per-row setup over fewer bytes). An expert matrix's prompt
// product has the tokens a batch of n_batch routes to one expert (n_batch * k / N, at least 1):
// few tokens per call cost more per flop; other matrices have min(n_batch, 128) (measured against
// vramfit bench: 64 tokens pack the weights for too few, 256 or more leave out the elementwise work
// of a prompt, swiglu, norms and rope, that no stage of the cost model holds).
VRAMFIT_API std::vector<KernelShape> kernel_shapes(const ModelShape &model, uint32_t n_batch = 512);
// Measures machine.host_kernels[type] for each shape by running the CPU kernels on n_threads
// threads (0: all cores): mat-vec over copies of the matrix filling a working set a few times the
// L3 cache (so every byte comes from RAM, as a model's weights do), and the product with a batch
// of shape.tokens tokens; each the best of six runs, the types taking turns (~0.1 s per type). Also
// measures host_attention_flops. Types the CPU kernels cannot multiply are skipped (the
// roofline); a shape whose row is not whole blocks is an Error(invalid_argument). Sets
// measured.host_kernels.
VRAMFIT_API void measure_host_kernels(MachineProfile &machine, std::span<const KernelShape> shapes, int n_threads = 0);

struct PlanRequest {
  uint32_t n_ctx = 4096;
  uint32_t n_batch = 512;
  KvType kv_type = KvType::f16;
  OffloadPolicy policy;
  MachineProfile machine;
  // Contexts that run at the same time (a server's parallel slots): each needs its own KV cache
  // and scratch of n_ctx / n_batch, so the plan reserves n_contexts of each on both sides.
  uint32_t n_contexts = 1;
};

enum class Location : uint8_t { host, device };
VRAMFIT_API const char *to_string(Location location) noexcept;
VRAMFIT_API const char *to_string(OffloadStrategy strategy) noexcept;
VRAMFIT_API const char *to_string(KvType type) noexcept;

// Bytes of one memory by what they hold. On the host, weights are views into the memory map
// (the bytes that must stay resident), not copies. On the device every item below is one arena
// reservation (each tensor, each layer's K, each layer's V, scratch, staging), rounded up to
// Plan::device_alignment; the overhead is outside the arena.
struct MemoryBreakdown {
  uint64_t weights = 0;
  uint64_t kv = 0;  // K and V of the layers placed here
  // f32 activations of one batch, when this side runs any stage of the forward pass: the
  // residual, normed input, q/k/v, attention output, feed-forward (dense or one expert's), router
  // logits, MoE gather/scatter buffers and (on the side holding the output head) up to 32 rows
  // of logits — what model::Workspace allocates (lib/offload/memory_model.hpp).
  uint64_t scratch = 0;
  // When both sides run stages: one buffer for the widest activation crossing between them,
  //   n_batch * 4 * max(n_embd, n_head*head_dim + 2*n_embd_kv)   (pinned memory on the host)
  uint64_t staging = 0;
  uint64_t overhead = 0;  // device only, when used at all: machine.device_fixed_overhead_bytes
  uint64_t total() const noexcept { return weights + kv + scratch + staging + overhead; }
};

struct PlannedTensor {
  std::string name;
  int32_t layer = -1;  // blk.N index; -1 for token_embd, output, output_norm, rope_freqs...
  GgmlType type = GgmlType::F32;
  uint64_t bytes = 0;  // GGUF size
  Location location = Location::host;
  uint64_t device_bytes = 0;  // arena bytes: round_up(bytes, device_alignment) on the device, 0 on the host
};

struct PlannedKvLayer {
  int32_t layer = 0;
  Location location = Location::host;
  uint64_t k_bytes = 0;  // one context's: n_ctx rows of n_embd_kv elements of kv_type (K; V is the same size)
  uint64_t v_bytes = 0;
  // n_contexts * (round_up(k) + round_up(v)) on the device, 0 on the host
  uint64_t device_bytes = 0;
};

struct Plan {
  static constexpr uint64_t device_alignment = 256;  // as cudaMalloc and model::Arena

  OffloadStrategy strategy = OffloadStrategy::fastest;  // as requested
  std::string chosen_by;                                // how the placement was found: "greedy", "layers", "rules", ...
  uint64_t budget_bytes = 0;                            // the cap the plan keeps (after resolving 0 = free - reserve)
  uint32_t n_ctx = 0;                                   // possibly shrunk (see notes)
  uint32_t n_batch = 0;
  KvType kv_type = KvType::f16;
  // Contexts whose KV caches and scratch the plan reserves (device.kv and device.scratch hold
  // all of them: one context's scratch is device.scratch / n_contexts).
  uint32_t n_contexts = 1;

  std::vector<PlannedTensor> tensors;  // file order
  std::vector<PlannedKvLayer> kv;      // one per layer
  MemoryBreakdown device;
  MemoryBreakdown host;
  uint32_t n_layer = 0;
  uint32_t n_device_layers = 0;  // layers whose every tensor and KV are on the device
  uint32_t n_expert_groups = 0;         // layers with an expert group (0 for a dense model)
  uint32_t n_device_expert_groups = 0;  // of those, the groups on the device

  // Bytes one generated token reads from each memory, as the cost model counts them: every
  // weight once, but of an expert group the expected k/N (n_expert_used / n_expert), of
  // token_embd one row (unless it is also the output projection), and the KV cache half full.
  struct TokenReads {
    uint64_t device = 0;
    uint64_t host = 0;
  } bytes_read_per_token;

  // Cost model output (see lib/offload/cost_model.hpp): per stage of the forward pass, on the
  // side it runs, max(bytes read / read bandwidth, flops / flop rate), plus one transfer
  // (latency + bytes / host_to_device_bandwidth) wherever consecutive stages change sides.
  // `fastest` minimizes 1/pp + 1/tg (a request with as many prompt as generated tokens).
  double predicted_pp_tok_s = 0;  // prompt processing at n_batch tokens per batch (streamed when it pays)
  double predicted_tg_tok_s = 0;  // generation, one token at a time, KV half full
  bool host_memory_fits = true;   // host.total() <= machine.host_available_bytes (true when unknown)
  MachineProfile machine;
  std::vector<std::string> notes;  // human sentences: shrunk context, clamped budget, ...

  // Prompt streaming: a batch of at least min_batch tokens runs the host-placed blocks (all but
  // the embedding lookup and the output head) on the device too, their weights copied in through
  // two staging slots (double buffered: one is computed from while the next is filled), and the
  // KV cache of a host layer through one device copy of it. The slots and the KV copy are in
  // device.staging; decode keeps the placement above.
  struct Streaming {
    bool enabled = false;
    uint32_t min_batch = 0;           // streamed when a batch has at least this many tokens
    uint64_t slot_bytes = 0;          // one staging slot: the largest tensor (or expert's three) streamed
    uint64_t kv_bytes = 0;            // one layer's K and V (0 when every KV layer is on the device)
    uint64_t bytes_per_batch = 0;     // weight bytes uploaded per streamed batch
    double predicted_pp_tok_s = 0;    // at n_batch, streamed
    double unstreamed_pp_tok_s = 0;   // at n_batch, each block where it lives
  } streaming;

  uint64_t device_total_bytes() const noexcept { return device.total(); }
  uint64_t host_total_bytes() const noexcept { return host.total(); }
  // Location of a tensor by name; Error(invalid_argument) when the plan has no such tensor.
  VRAMFIT_API Location location_of(std::string_view tensor_name) const;

  // JSON: budget_bytes, device_total_bytes, host_total_bytes, n_ctx, n_batch, kv_type, n_contexts,
  // predicted_pp_tok_s, predicted_tg_tok_s, host_memory_fits, by_category {device, host} (weights,
  // kv, scratch, staging, overhead, total), bytes_read_per_token {device, host}, expert_groups
  // {device, total}, machine, machine_sources (each input "measured", "given" or "assumed"), notes, layers [{layer, attention, ffn, experts, kv}] (each "gpu",
  // "cpu", "mixed" or null when the layer has none), kv [{layer, device, bytes}] and tensors
  // [{name, device, bytes, type, layer}], where device is "gpu" or "cpu".
  VRAMFIT_API std::string to_json() const;
  VRAMFIT_API std::string to_table() const;  // human summary, then one line per run of alike layers
};

// A pure function: same inputs, same plan; reads tensor infos and metadata, never tensor data.
// Throws Error(budget_exceeded) when the budget cannot hold what must be on the device — manual
// placements, -ngl counts, a KV cache forced there, or (fastest, layers) not even the device's
// fixed costs plus the smallest group; the message names the smallest budget that works. With
// policy.min_ctx it first shrinks n_ctx (to a multiple of 256 when possible) and notes it.
// With n_contexts > 1 the error also says how many contexts the budget holds.
// Error(invalid_argument) for a meaningless request (n_ctx, n_batch or n_contexts 0, a bad regex, q8_0 KV
// with n_embd_kv not a multiple of 32, no budget and no known device memory).
VRAMFIT_API Plan make_plan(const ModelShape &model, const PlanRequest &request);
VRAMFIT_API Plan make_plan(const gguf::File &header, const PlanRequest &request);

}  // namespace vramfit
