#include "service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <span>

#include "api_error.hpp"
#include "response.hpp"
#include "vramfit/error.hpp"
#include "vramfit/generate.hpp"

namespace vramfit::server {
namespace {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Thrown from the decode turn of a request whose client is gone: ends its generation.
struct ClientGone {};

// The prompt one n_batch chunk per turn, so that a long prompt does not stall the tokens of the
// other slots for its whole length.
void decode_prompt(Context &ctx, std::span<const int32_t> prompt,
                   const std::function<void(const std::function<void()> &)> &take_turn) {
  const auto n_batch = static_cast<size_t>(ctx.params().n_batch);
  for (size_t first = 0; first < prompt.size(); first += n_batch) {
    const std::span<const int32_t> chunk = prompt.subspan(first, std::min(n_batch, prompt.size() - first));
    take_turn([&] { ctx.decode(chunk); });
  }
}

// The end of an answer: the whole JSON body, or the stream's last chunks and [DONE].
void write_answer(const Job &job, const GenerateResult &result, const std::function<bool(std::string_view)> &write) {
  const CompletionRequest &r = job.request;
  const Usage usage{static_cast<int32_t>(job.prompt_tokens.size()), result.stats.n_generated};
  if (!r.stream) {
    write(completion_body(job.header, result.text, result.stop_reason, usage));
    return;
  }
  write(finish_chunk(job.header, result.stop_reason, r.include_usage));
  if (r.include_usage) write(usage_chunk(job.header, usage));
  write(done_event);
}

}  // namespace

Service::Service(Model model, ServiceConfig config)
    : model_(std::move(model)),
      config_(std::move(config)),
      chat_template_(ChatTemplate::from_model(model_)),
      slots_(model_, config_.n_slots, config_.context, config_.max_queue),
      created_(unix_seconds()) {}

std::vector<int32_t> Service::tokenize(const CompletionRequest &request) const {
  if (request.endpoint == Endpoint::completion) return model_.tokenize(request.prompt, true, false);
  std::string prompt;
  try {
    prompt = chat_template_.apply_json(request.messages_json, true);
  } catch (const Error &e) {
    throw invalid_field("messages",
                        fmt::format("The model's chat template cannot render these messages: {}", e.what()));
  }
  // The template writes the special tokens as text; a BOS it writes must not be added twice.
  const std::string &bos = chat_template_.bos_token();
  const bool has_bos = !bos.empty() && prompt.starts_with(bos);
  return model_.tokenize(prompt, !has_bos, true);
}

Job Service::prepare(CompletionRequest request) const {
  if (!request.model.empty() && request.model != config_.model_id)
    throw ApiError{404,
                   fmt::format("The model `{}` does not exist or you do not have access to it. This server serves "
                               "`{}`.", request.model, config_.model_id),
                   "invalid_request_error", "model", "model_not_found"};
  Job job;
  job.prompt_tokens = tokenize(request);
  const auto n_prompt = static_cast<int32_t>(job.prompt_tokens.size());
  const bool chat = request.endpoint == Endpoint::chat;
  const char *field = chat ? "messages" : "prompt";
  if (n_prompt == 0) throw invalid_field(field, "The prompt is empty.");
  // At least one position must remain for the first generated token's logits to mean anything.
  if (n_prompt >= n_ctx())
    throw invalid_field(field,
                        fmt::format("This model's maximum context length is {} tokens. However, your {} resulted in "
                                    "{} tokens. Please reduce the length of the {}.",
                                    n_ctx(), field, n_prompt, field),
                        "context_length_exceeded");
  job.header = ResponseHeader{request.endpoint,
                              fmt::format("{}-{:x}{:08x}", chat ? "chatcmpl" : "cmpl", created_, next_id_++),
                              unix_seconds(), config_.model_id};
  job.request = std::move(request);
  return job;
}

void Service::acquire_slot(Job &job) { job.lease = slots_.acquire(); }

SamplerParams Service::sampler_params(const CompletionRequest &request) const {
  SamplerParams p = config_.sampler;
  if (request.temperature) p.temperature = *request.temperature;
  if (request.top_p) {
    if (*request.top_p == 0) p.temperature = 0;  // only the most likely token: greedy
    else p.top_p = *request.top_p;
  }
  if (request.seed) p.seed = *request.seed;
  else if (config_.random_seed) p.seed = std::random_device{}();
  return p;
}

int32_t Service::run(Job &job, const Sink &sink) {
  const CompletionRequest &r = job.request;
  const ResponseHeader &h = job.header;
  Context &ctx = job.lease->slot().context;
  bool gone = false;
  auto write = [&](std::string_view bytes) {
    if (!gone && !sink.write(bytes)) gone = true;
    return !gone;
  };
  GenerateParams params;
  params.max_tokens = r.max_tokens.value_or(config_.default_max_tokens);
  params.stop = r.stop;
  if (r.stream) params.on_piece = [&](std::string_view piece) { return write(text_chunk(h, piece, r.include_usage)); };
  auto take_turn = [&](const std::function<void()> &decode) {
    if (gone || (sink.is_open && !sink.is_open())) throw ClientGone{};
    slots_.turns().run(decode);
  };
  params.run_decode = take_turn;
  try {
    // A chat stream opens with the assistant's role (a completion stream has none).
    if (r.stream && r.endpoint == Endpoint::chat && !write(role_chunk(h, r.include_usage))) throw ClientGone{};
    ctx.clear();
    Sampler sampler(sampler_params(r));
    decode_prompt(ctx, job.prompt_tokens, take_turn);
    for (int32_t token : job.prompt_tokens) sampler.accept(token);  // what generate() does with a prompt
    const GenerateResult result = generate(ctx, sampler, std::span<const int32_t>(), params);
    if (!gone) write_answer(job, result, write);
    if (gone) throw ClientGone{};
    return result.stats.n_generated;
  } catch (const ClientGone &) {
    ++cancelled_;
    return 0;
  } catch (const std::exception &e) {
    const std::string body =
        error_body(ApiError{500, fmt::format("Generation failed: {}", e.what()), "server_error", "", ""});
    write(r.stream ? error_event(body) : body);
    return 0;
  }
}

std::string Service::models_json() const { return models_body(config_.model_id, created_); }

std::string Service::model_json(const std::string &id) const {
  if (id != config_.model_id)
    throw ApiError{404, fmt::format("The model `{}` does not exist or you do not have access to it.", id),
                   "invalid_request_error", "model", "model_not_found"};
  return model_body(config_.model_id, created_);
}

std::string Service::memory_json() const { return memory_body(slots_.memory()); }

}  // namespace vramfit::server
