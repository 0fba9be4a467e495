// Threads: several threads each run their own Context on one shared Model (on the CPU, and split
// with a simulated device), while others plan and tokenize — every output identical to a serial
// run. scripts/test.sh also runs this test built with ThreadSanitizer (-DVRAMFIT_SANITIZE=thread),
// which must report nothing.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "model/model_test_util.hpp"
#include "test_data.hpp"
#include "vramfit/chat.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"
#include "vramfit/sampler.hpp"
#include "vramfit/tokenizer.hpp"

using namespace vramfit;

namespace {

constexpr int kThreads = 4;
const char *const kPrompts[kThreads] = {"Once upon a time, there was a little", "The cat", "Lily and Tom went",
                                        "One day"};

// One session of thread i: its own Context (two pool threads) and sampler; sampled, not greedy,
// so the sampler's state is part of what must not be shared.
std::vector<int32_t> session(const Model &model, int i) {
  Context ctx(model, {.n_ctx = 96, .n_batch = 16, .n_threads = 2});
  Sampler sampler({.temperature = 0.8f, .seed = 1000u + static_cast<uint64_t>(i)});
  GenerateParams params;
  params.max_tokens = 12;
  std::vector<int32_t> tokens = generate(ctx, sampler, kPrompts[i], params).tokens;
  ctx.clear();  // a second conversation in the same context
  params.max_tokens = 8;
  const GenerateResult second = generate(ctx, sampler, kPrompts[(i + 1) % kThreads], params);
  tokens.insert(tokens.end(), second.tokens.begin(), second.tokens.end());
  return tokens;
}

std::string plan_of(const gguf::File &header, int i) {
  PlanRequest r;
  r.n_ctx = 2048u << (i % 2);
  r.policy.vram_budget_bytes = (10ull + i) << 30;
  return make_plan(header, r).to_json();
}

std::vector<int32_t> tokens_of(const Vocabulary &vocab, int i) {
  return vocab.tokenize(std::string(kPrompts[i]) + " <|eot_id|> \xE4\xB8\x80\xF0\x9F\x98\x80", true, i % 2 == 1);
}

// Runs `work(i)` for i in [0, n) on n threads at once and returns the results in order.
template <class F>
auto in_parallel(int n, F work) {
  std::vector<decltype(work(0))> results(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = work(i); });
  for (std::thread &t : threads) t.join();
  return results;
}

}  // namespace

TEST_CASE("contexts on one shared model, planning and tokenizing at once give the serial results") {
  const auto model_path = test::test_data("models/stories260K.gguf");
  const auto header_path = test::test_data("models/header-only/llama2-70b-Q4_K_M.gguf");
  const auto vocab_path = test::test_data("vocab/ggml-vocab-llama3.gguf");
  if (!model_path || !header_path || !vocab_path) return;

  const Model cpu_model = Model::load(*model_path, test::cpu_only());
  ModelParams split_params;
  split_params.device = "sim:64MiB";
  split_params.n_ctx = 96;
  split_params.n_batch = 16;
  split_params.offload.strategy = OffloadStrategy::manual;
  split_params.offload.n_gpu_layers = 3;  // 3 of 5 layers on the simulated device
  const Model split_model = Model::load(*model_path, split_params);
  const gguf::File header = gguf::File::open(*header_path);
  const Vocabulary vocab = Vocabulary::load(*vocab_path);
  ChatTemplate chat = ChatTemplate::from_gguf(*vocab_path);

  // Serial first: the reference of every output.
  std::vector<std::vector<int32_t>> cpu_serial, split_serial, tokens_serial;
  std::vector<std::string> plans_serial, prompts_serial;
  for (int i = 0; i < kThreads; ++i) {
    cpu_serial.push_back(session(cpu_model, i));
    plans_serial.push_back(plan_of(header, i));
    tokens_serial.push_back(tokens_of(vocab, i));
    prompts_serial.push_back(chat.apply(std::vector<ChatMessage>{{"user", kPrompts[i]}}));
  }
  split_serial.push_back(session(split_model, 0));
  CHECK(cpu_serial[0].size() == 20);

  // Then everything at once: kThreads CPU sessions, one split session (the plan reserved device
  // memory for one context), kThreads planners, tokenizers and template renderers.
  std::vector<std::vector<int32_t>> cpu_parallel, split_parallel, tokens_parallel;
  std::vector<std::string> plans_parallel, prompts_parallel;
  std::vector<std::thread> groups;
  groups.emplace_back([&] { cpu_parallel = in_parallel(kThreads, [&](int i) { return session(cpu_model, i); }); });
  groups.emplace_back([&] { split_parallel = in_parallel(1, [&](int i) { return session(split_model, i); }); });
  groups.emplace_back([&] { plans_parallel = in_parallel(kThreads, [&](int i) { return plan_of(header, i); }); });
  groups.emplace_back([&] { tokens_parallel = in_parallel(kThreads, [&](int i) { return tokens_of(vocab, i); }); });
  groups.emplace_back([&] {
    prompts_parallel = in_parallel(kThreads, [&](int i) { return chat.apply(std::vector<ChatMessage>{{"user", kPrompts[i]}}); });
  });
  for (std::thread &t : groups) t.join();

  CHECK(cpu_parallel == cpu_serial);
  CHECK(split_parallel == split_serial);
  CHECK(plans_parallel == plans_serial);
  CHECK(tokens_parallel == tokens_serial);
  CHECK(prompts_parallel == prompts_serial);
}
