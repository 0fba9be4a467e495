// The OpenAI-compatible service without the sockets: checks a parsed request against the model
// (its name, the prompt's length in tokens), queues it for a slot, and generates the answer into
// a sink — one JSON body, or server-sent events as the text streams. cmd_serve.cpp wires it to
// HTTP; tests drive it directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "request.hpp"
#include "slots.hpp"
#include "vramfit/chat.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::server {

struct ServiceConfig {
  std::string model_id;     // what /v1/models lists and requests may name
  int32_t n_slots = 1;      // contexts generating at once
  int32_t max_queue = 16;   // requests that may wait for a slot; more get 503
  ContextParams context;    // each slot's (n_ctx, n_batch, threads, KV type)
  SamplerParams sampler;    // defaults a request's temperature / top_p / seed override
  bool random_seed = true;  // a request without a seed gets a random one (else sampler.seed)
  int32_t default_max_tokens = -1;  // for a request without max_tokens (-1: until the end)
};

// Where an answer goes. write() returns false once the client has gone; is_open() says whether it
// still listens (checked before each decode, so a client that disconnects stops its generation).
struct Sink {
  std::function<bool(std::string_view bytes)> write;
  std::function<bool()> is_open;
};

// A request checked and tokenized, waiting to run (holding its slot once it has one).
struct Job {
  CompletionRequest request;
  std::vector<int32_t> prompt_tokens;
  ResponseHeader header;
  std::unique_ptr<SlotLease> lease;
};

class Service {
 public:
  // Creates the slots: Error(budget_exceeded) when the plan's device memory cannot hold them.
  Service(Model model, ServiceConfig config);

  // Checks the request against the model: ApiError 404 for another model's name, 400 when the
  // prompt does not fit the context (or the chat template fails on the messages).
  Job prepare(CompletionRequest request) const;
  // Waits for a slot (ApiError 503 when the queue is full).
  void acquire_slot(Job &job);
  // Generates into the sink; never throws: a failure mid-answer is written as an error (an SSE
  // error event, or the error body). Returns the tokens generated (0 when the client left first).
  int32_t run(Job &job, const Sink &sink);

  const ServiceConfig &config() const noexcept { return config_; }
  const Model &model() const noexcept { return model_; }
  std::string models_json() const;
  // GET /v1/models/{id}: ApiError 404 for another id.
  std::string model_json(const std::string &id) const;
  std::string memory_json() const;
  int32_t n_ctx() const noexcept { return slots_.n_ctx(); }
  // Requests whose client left before their answer was complete.
  uint64_t n_cancelled() const noexcept { return cancelled_.load(); }

 private:
  std::vector<int32_t> tokenize(const CompletionRequest &request) const;
  SamplerParams sampler_params(const CompletionRequest &request) const;

  Model model_;
  ServiceConfig config_;
  ChatTemplate chat_template_;
  SlotPool slots_;
  int64_t created_ = 0;
  mutable std::atomic<uint64_t> next_id_{0};  // for response ids
  std::atomic<uint64_t> cancelled_{0};
};

}  // namespace vramfit::server
