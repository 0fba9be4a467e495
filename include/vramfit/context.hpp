// vramfit::Context — one inference session over a Model: the KV cache, scratch buffers, a thread
// pool, and the logits of the last decoded batch.
//
// A Context is used by one thread at a time; several Contexts may share one Model from different
// threads. Every buffer a Context allocates is accounted for in memory_report().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vramfit/error.hpp"
#include "vramfit/export.hpp"
#include "vramfit/model.hpp"
#include "vramfit/types.hpp"

namespace vramfit {

// On a model with a device (ModelParams.device), a context may not ask for more than the plan
// reserved (ModelParams.n_ctx, n_batch, kv_type): Error(budget_exceeded), nothing allocated.
struct ContextParams {
  int32_t n_ctx = 0;        // tokens the KV cache holds; 0 = the model's trained context length
                            // (with a device: the plan's n_ctx)
  int32_t n_batch = 512;    // tokens per forward pass when decoding a long batch (prefill chunks)
  int32_t n_threads = 0;    // CPU threads; 0 = all cores
  GgmlType kv_type = GgmlType::F16;  // KV cache element type: F16, F32 or Q8_0
};

// Bytes of one memory (the host, or the device of the offload plan), by purpose. On a device
// every figure is arena bytes (each reservation rounded up as the arena rounds it), so they add
// up to what the device has handed out.
struct DeviceMemory {
  std::string device;        // "cpu", "cuda:0 (...)", "sim (N bytes)"
  uint64_t weights = 0;      // weights read there (on the CPU: views into the memory map)
  uint64_t kv = 0;           // KV cache of this context
  uint64_t scratch = 0;      // activations, attention and logits buffers of this context
  uint64_t staging = 0;      // host copy of activations crossing between devices
  uint64_t overhead = 0;     // device only: runtime context + the device's fixed reservations
  uint64_t peak = 0;         // high-water mark of the bytes allocated there (+ overhead on a device)
  uint64_t budget = 0;       // device only: the VRAM budget (0 on the host: none)
  MemoryBreakdown planned;   // what the offload plan lists for this memory (zeros without a plan)
  uint64_t total() const noexcept { return weights + kv + scratch + staging + overhead; }
};

// What Context::decode_reusing_prefix() did: the tokens kept from the cache and those decoded.
struct PrefixReuse {
  std::span<const float> logits;  // of the sequence's last token (as decode() returns them)
  int32_t n_reused = 0;           // leading tokens of the sequence the KV cache already held
  int32_t n_decoded = 0;          // the rest, run through the model
};

struct MemoryReport {
  std::vector<DeviceMemory> devices;  // the host first, then the device (when the model has one)
  uint64_t total() const noexcept {
    uint64_t sum = 0;
    for (const auto &d : devices) sum += d.total();
    return sum;
  }
  // One line per memory, in MB, then (with a plan) the device's peak, planned and budget bytes.
  VRAMFIT_API std::string to_table() const;
};

class VRAMFIT_API Context {
 public:
  // Allocates the KV cache and scratch. Error(invalid_argument) for a meaningless parameter
  // (negative sizes, a kv_type other than F16/F32/Q8_0), Error(out_of_memory/budget_exceeded)
  // when the buffers do not fit.
  explicit Context(Model model, const ContextParams &params = {});
  Context(Context &&) noexcept;
  Context &operator=(Context &&) noexcept;
  ~Context();

  // Appends `tokens` at position n_past() (in chunks of n_batch) and returns the logits of the
  // last token (n_vocab floats). With all_logits, the logits of every token of this call are kept
  // (see logits(i)). Error(context_full), with nothing changed, when the tokens do not fit;
  // Error(invalid_argument) for an empty batch or a token id outside the vocabulary. Any other
  // error (a device failing) leaves the chunks decoded before it in the cache and no logits.
  // The returned span (like logits()) stays valid until the next decode(), truncate() or clear().
  std::span<const float> decode(std::span<const int32_t> tokens, bool all_logits = false);
  // Logits of token i of the last decode() call (-1 = its last token). Without all_logits only
  // the last token's are kept; asking for another is Error(invalid_argument).
  std::span<const float> logits(int32_t i = -1) const;

  int32_t n_past() const noexcept;  // tokens in the KV cache
  // The token ids in the KV cache, in order (n_past() of them); valid until the next
  // decode/truncate/clear.
  std::span<const int32_t> tokens() const noexcept;

  int32_t n_ctx() const noexcept;
  int32_t n_threads() const noexcept;
  const ContextParams &params() const noexcept;
  const Model &model() const noexcept;
  void clear() noexcept;  // forgets every token (the buffers stay allocated)

  // ---- reusing the KV cache (a conversation, a server's sessions) ----
  // Forgets every token after the first n (0 <= n <= n_past()): the next decode() continues at
  // position n. Cheap: the cache rows stay where they are and are overwritten; nothing is
  // allocated or recomputed. The logits of the last decode are dropped.
  // A sliding-window layer (gpt-oss) keeps only window - 1 + n_batch rows, moving the
  // newest ones to the front when it fills: once it has, position n can only be resumed if its
  // window is still held, i.e. n >= truncate_floor(). Error(invalid_argument), nothing changed,
  // for n outside [0, n_past()] or 0 < n < truncate_floor().
  void truncate(int32_t n);
  // The smallest n > 0 truncate() accepts: 0 on a model without sliding-window layers (any n
  // works) and until a windowed cache has slid.
  int32_t truncate_floor() const noexcept;

  // Makes the KV cache hold exactly `sequence` (e.g. a whole conversation, re-rendered each turn)
  // and returns the logits of its last token: keeps the longest common prefix of tokens() and
  // `sequence` that truncate() accepts (else starts over from 0), and decodes only the rest,
  // always at least the last token. The logits are bit-identical to a fresh context's that
  // decodes the same chunks (the kept prefix as it was decoded, then the rest); on the CPU also to
  // the whole sequence decoded at once (its kernels give each token the same bits in any batch;
  // a GPU multiplies batches over 8 tokens in f16, so there the chunking shows in the last bits).
  // Error(context_full), with nothing changed, when the sequence is longer than n_ctx();
  // Error(invalid_argument) when it is empty or holds a token outside the vocabulary; other errors
  // as decode().
  PrefixReuse decode_reusing_prefix(std::span<const int32_t> sequence);

  MemoryReport memory_report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vramfit
