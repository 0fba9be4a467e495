// Reusing the KV cache between the turns of a conversation: Context::tokens(), truncate() and
// decode_reusing_prefix(). Whatever a context held before, keeping a prefix and decoding the rest
// must give exactly the logits of a fresh context that decodes that prefix and the rest in the
// same chunks; on the CPU also those of the whole sequence decoded at once (its results do not
// depend on the batch). A GPU's are not batch-invariant (f16 tensor-core GEMMs above 8 tokens):
// what holds everywhere is the same-chunks equality.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "model_test_util.hpp"
#include "test_data.hpp"
#include "vramfit/context.hpp"
#include "vramfit/model.hpp"

using namespace vramfit;

namespace {

std::vector<float> copy_of(std::span<const float> logits) { return {logits.begin(), logits.end()}; }

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double{a[i]} - b[i]));
  return worst;
}

// How a chat turn fills the cache: the prompt in one decode() (n_batch chunks), then each
// generated token on its own.
struct Chunks {
  std::vector<std::vector<int32_t>> calls;
  std::vector<int32_t> all() const {
    std::vector<int32_t> out;
    for (const auto &c : calls) out.insert(out.end(), c.begin(), c.end());
    return out;
  }
};

// Turn 1 of a conversation: `prompt`, then n greedy tokens (each decoded, as chat does before it
// samples the next). Returns the chunks it decoded.
Chunks greedy_turn(Context &ctx, const std::vector<int32_t> &prompt, int n) {
  Chunks chunks{{prompt}};
  std::span<const float> logits = ctx.decode(prompt);
  for (int i = 0; i < n; ++i) {
    const auto token = static_cast<int32_t>(test::argmax(logits));
    chunks.calls.push_back({token});
    logits = ctx.decode(chunks.calls.back());
  }
  return chunks;
}

// A fresh context's logits after decoding `chunks` call by call, then `rest` in one call.
std::vector<float> fresh_logits(Context &fresh, const Chunks &chunks, std::span<const int32_t> rest) {
  fresh.clear();
  for (const auto &call : chunks.calls) fresh.decode(call);
  return copy_of(fresh.decode(rest));
}

// Chunks holding the first n tokens of `chunks`.
Chunks first_tokens(const Chunks &chunks, size_t n) {
  Chunks out;
  for (const auto &call : chunks.calls) {
    if (n == 0) break;
    const size_t take = std::min(n, call.size());
    out.calls.emplace_back(call.begin(), call.begin() + static_cast<std::ptrdiff_t>(take));
    n -= take;
  }
  return out;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Two turns and an edited first turn on `model`, each checked against a fresh context.
void check_two_turns(const Model &model, const ContextParams &params) {
  Context reused(model, params), fresh(model, params);
  const std::vector<int32_t> prompt = model.tokenize("Once upon a time, there was a little girl named Lily.", true);
  const Chunks turn1 = greedy_turn(reused, prompt, 8);
  const std::vector<int32_t> history = turn1.all();
  CHECK(std::ranges::equal(reused.tokens(), history));

  // Turn 2: the whole conversation again, plus the new message; only the message is decoded.
  const std::vector<int32_t> message = model.tokenize(" She liked to play in the park.", false);
  const std::vector<int32_t> turn2 = concat(history, message);
  const PrefixReuse r = reused.decode_reusing_prefix(turn2);
  CHECK(r.n_reused == static_cast<int32_t>(history.size()));
  CHECK(r.n_decoded == static_cast<int32_t>(message.size()));
  CHECK(std::ranges::equal(reused.tokens(), turn2));
  const std::vector<float> got = copy_of(r.logits);
  const std::vector<float> want = fresh_logits(fresh, turn1, message);
  CHECK(got == want);  // bit-identical: the same chunks over the same numbers
  // The CPU computes each token's row the same whatever the batch (activations quantized per
  // row, one dot-product order): the whole sequence in one decode gives the same bits too.
  fresh.clear();
  const std::vector<float> one_batch = copy_of(fresh.decode(turn2));
  MESSAGE(model.info().name << ": reused prefix vs the whole sequence in one decode: max |diff| "
                            << max_abs_diff(got, one_batch));
  CHECK(got == one_batch);

  // The cache keeps going the same way afterwards: three more tokens, one at a time.
  fresh_logits(fresh, turn1, message);
  for (int i = 0; i < 3; ++i) {
    const auto token = static_cast<int32_t>(test::argmax(got));
    CHECK(copy_of(reused.decode(std::span(&token, 1))) == copy_of(fresh.decode(std::span(&token, 1))));
  }

  // An edit of turn 1 after 5 prompt tokens: 5 kept, everything written after them replaced.
  const std::vector<int32_t> edited = concat({prompt.begin(), prompt.begin() + 5}, model.tokenize(" a dog ran", false));
  const PrefixReuse e = reused.decode_reusing_prefix(edited);
  CHECK(e.n_reused == 5);
  CHECK(std::ranges::equal(reused.tokens(), edited));
  // Rows 0..4 were decoded with the rest of the prompt in one batch: the fresh context does the same.
  fresh.clear();
  fresh.decode(prompt);
  fresh.truncate(5);
  CHECK(copy_of(e.logits) == copy_of(fresh.decode(std::span(edited).subspan(5))));

  // The same sequence again: everything but the last token reused (its logits are recomputed).
  const PrefixReuse same = reused.decode_reusing_prefix(edited);
  CHECK(same.n_reused == static_cast<int32_t>(edited.size()) - 1);
  CHECK(same.n_decoded == 1);
}

ContextParams small_context(int32_t n_batch) {
  ContextParams p;
  p.n_ctx = 128;
  p.n_batch = n_batch;
  p.n_threads = 2;
  return p;
}

}  // namespace

TEST_CASE("tokens() and truncate(): the ids in the cache, cut back cheaply, bad cuts refused") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  const Model model = Model::load(*path, test::cpu_only());
  Context ctx(model, small_context(16));
  const std::vector<int32_t> tokens = model.tokenize("Once upon a time, there was a little", true);
  CHECK(ctx.tokens().empty());
  ctx.decode(tokens);
  CHECK(std::ranges::equal(ctx.tokens(), tokens));
  CHECK(ctx.truncate_floor() == 0);  // no sliding window

  for (int32_t bad : {-1, static_cast<int32_t>(tokens.size()) + 1}) {
    try {
      ctx.truncate(bad);
      FAIL("truncate(" << bad << ") was accepted");
    } catch (const Error &e) {
      CHECK(e.code() == ErrorCode::invalid_argument);
      CHECK(std::string(e.what()).find("holds " + std::to_string(tokens.size()) + " tokens") != std::string::npos);
    }
  }
  CHECK(ctx.n_past() == static_cast<int32_t>(tokens.size()));  // nothing changed

  ctx.truncate(4);
  CHECK(ctx.n_past() == 4);
  CHECK(std::ranges::equal(ctx.tokens(), std::span(tokens).first(4)));
  CHECK_THROWS_AS(ctx.logits(), Error);  // the last decode's logits are gone with its tokens
  const std::vector<float> after_cut = copy_of(ctx.decode(std::span(tokens).subspan(4)));
  ctx.clear();
  CHECK(ctx.tokens().empty());
  ctx.decode(std::span(tokens).first(4));
  CHECK(after_cut == copy_of(ctx.decode(std::span(tokens).subspan(4))));

  // A sequence longer than the context: refused before anything is forgotten.
  const std::vector<int32_t> too_long(129, tokens[1]);
  CHECK_THROWS_AS(ctx.decode_reusing_prefix(too_long), Error);
  CHECK(std::ranges::equal(ctx.tokens(), tokens));
  CHECK_THROWS_AS(ctx.decode_reusing_prefix(std::vector<int32_t>{}), Error);
  CHECK_THROWS_AS(ctx.decode_reusing_prefix(std::vector<int32_t>{tokens[0], model.n_vocab()}), Error);
  CHECK(std::ranges::equal(ctx.tokens(), tokens));
}

TEST_CASE("prefix reuse gives the logits of a fresh evaluation: llama, qwen3moe, gpt-oss") {
  for (const std::string name : {"synth-Q4_K_M", "synth-F32", "synth-qwen3moe-Q4_K_M", "synth-gptoss-MXFP4_MOE",
                           "synth-gptoss-F32"}) {
    CAPTURE(name);
    auto path = test::test_data("models/" + name + ".gguf");
    if (!path) continue;
    const Model model = Model::load(*path, test::cpu_only());
    // n_batch 64: the prompt in one batch; gpt-oss's window of 8 never slides in 128 positions.
    check_two_turns(model, small_context(64));
  }
}

// gpt-oss's windowed layers keep window - 1 + n_batch rows (8 - 1 + 4 here) and slide: a cut to
// before the last slide cannot resume (the keys it attends to are gone), so the cache is decoded
// again from 0; a cut after it resumes in place. Both give a fresh context's logits exactly.
TEST_CASE("gpt-oss sliding-window caches: a cut they cannot resume starts over, one they can is reused") {
  auto path = test::test_data("models/synth-gptoss-MXFP4_MOE.gguf");
  if (!path) return;
  const Model model = Model::load(*path, test::cpu_only());
  Context reused(model, small_context(4)), fresh(model, small_context(4));
  const std::vector<int32_t> prompt = model.tokenize("Once upon a time, there was a little girl named Lily.", true);
  const Chunks turn1 = greedy_turn(reused, prompt, 12);
  const std::vector<int32_t> history = turn1.all();
  const int32_t floor = reused.truncate_floor();
  MESSAGE("after " << history.size() << " tokens the windowed caches resume from position " << floor);
  REQUIRE(floor > 8);
  REQUIRE(floor < static_cast<int32_t>(history.size()));

  // truncate() refuses a cut below the floor (and changes nothing); 0 is always fine.
  CHECK_THROWS_AS(reused.truncate(floor - 1), Error);
  CHECK(std::ranges::equal(reused.tokens(), history));

  // A cut at the floor: reused in place.
  const std::vector<int32_t> other = model.tokenize(" a big dog", false);
  const std::vector<int32_t> at_floor = concat({history.begin(), history.begin() + floor}, other);
  const PrefixReuse kept = reused.decode_reusing_prefix(at_floor);
  CHECK(kept.n_reused == floor);
  CHECK(copy_of(kept.logits) == fresh_logits(fresh, first_tokens(turn1, static_cast<size_t>(floor)), other));

  // A cut below it: decoded again from 0, in n_batch chunks, as a fresh context decodes it.
  const int32_t floor_now = reused.truncate_floor();
  REQUIRE(floor_now > 9);
  const std::vector<int32_t> below = concat({at_floor.begin(), at_floor.begin() + 9}, other);
  const PrefixReuse restarted = reused.decode_reusing_prefix(below);
  CHECK(restarted.n_reused == 0);
  CHECK(restarted.n_decoded == static_cast<int32_t>(below.size()));
  fresh.clear();
  CHECK(copy_of(restarted.logits) == copy_of(fresh.decode(below)));
  CHECK(std::ranges::equal(reused.tokens(), below));
}

// Turn 1 on `split`, then a cut 3 tokens back (or at the floor) and a new message, against a CPU
// context decoding the same chunks.
void check_split_reuse(const Model &split, const Model &cpu, const ContextParams &params, std::string_view message_text) {
  Context reused(split, params), fresh(cpu, params);
  const std::vector<int32_t> prompt = split.tokenize("Once upon a time, there was a little girl named Lily.", true);
  const Chunks turn1 = greedy_turn(reused, prompt, 12);
  const std::vector<int32_t> history = turn1.all();
  const auto keep = std::max<int32_t>(reused.truncate_floor(), static_cast<int32_t>(history.size()) - 3);
  const std::vector<int32_t> message = split.tokenize(message_text, false);
  const std::vector<int32_t> turn2 = concat({history.begin(), history.begin() + keep}, message);
  const PrefixReuse r = reused.decode_reusing_prefix(turn2);
  CHECK(r.n_reused == keep);
  CHECK(copy_of(r.logits) == fresh_logits(fresh, first_tokens(turn1, static_cast<size_t>(keep)), message));
  const MemoryReport report = reused.memory_report();
  REQUIRE(report.devices.size() == 2);
  CHECK(report.devices[1].kv > 0);
}

ModelParams sim_params(const ContextParams &context, OffloadStrategy strategy, int32_t n_gpu_layers, uint64_t budget) {
  ModelParams mp;
  mp.device = "sim";
  mp.n_ctx = context.n_ctx;
  mp.n_batch = context.n_batch;
  mp.offload.strategy = strategy;
  mp.offload.n_gpu_layers = n_gpu_layers;
  mp.offload.vram_budget_bytes = budget;
  return mp;
}

// The device path: a split plan on a simulated device (its KV caches and blocks on the "device",
// the rest on the CPU) reuses the prefix and gives the CPU-only fresh logits exactly.
TEST_CASE("sim device with a split plan: prefix reuse gives the CPU's fresh logits") {
  for (const std::string name : {"synth-Q4_K_M", "synth-gptoss-MXFP4_MOE"}) {
    CAPTURE(name);
    auto path = test::test_data("models/" + name + ".gguf");
    if (!path) continue;
    const ContextParams params = small_context(4);
    // Layer 0 on the device, the rest on the CPU.
    const Model split = Model::load(*path, sim_params(params, OffloadStrategy::layers, 1, 64ull << 20));
    REQUIRE(split.plan() != nullptr);
    REQUIRE(split.plan()->n_device_layers == 1);
    check_split_reuse(split, Model::load(*path, test::cpu_only()), params, " She liked to play.");
  }
}

// Long enough batches stream the host layers' weights (and KV caches) through the device: the
// rest of a cut sequence too, from the cut on.
TEST_CASE("sim device streaming a prompt: prefix reuse gives the CPU's fresh logits") {
  int n_streamed = 0;
  for (const std::string name : {"synth-Q4_K_M", "synth-gptoss-MXFP4_MOE"}) {
    CAPTURE(name);
    auto path = test::test_data("models/" + name + ".gguf");
    if (!path) continue;
    const Model cpu = Model::load(*path, test::cpu_only());
    const ContextParams params = small_context(16);
    // These models are so small the cost model keeps them on the CPU when it may choose: one or
    // two layers on the device, the rest streamed (as in test_executor.cpp).
    const uint64_t weights = cpu.info().weight_bytes;
    for (uint64_t budget : {weights / 2, weights, 2 * weights}) {
      CAPTURE(budget);
      std::optional<Model> split;
      try {
        split = Model::load(*path, sim_params(params, OffloadStrategy::manual, budget > weights ? 2 : 1, budget));
      } catch (const Error &e) {
        CHECK(e.code() == ErrorCode::budget_exceeded);
        continue;
      }
      if (!split->plan() || !split->plan()->streaming.enabled) continue;
      MESSAGE(name << ": batches of " << split->plan()->streaming.min_batch << " tokens or more stream");
      ++n_streamed;
      check_split_reuse(*split, cpu, params,
                        " She liked to play in the park with her friends, and every day they ran to the big tree.");
    }
  }
  CHECK(n_streamed >= 1);
}
