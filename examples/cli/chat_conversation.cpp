#include "chat_conversation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <span>
#include <utility>

namespace vramfit::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Conversation::Conversation(const Model &model, Context &ctx, Sampler &sampler, ConversationSettings settings)
    : model_(model),
      ctx_(ctx),
      sampler_(sampler),
      settings_(std::move(settings)),
      template_(ChatTemplate::from_model(model)) {
  // Today's date is fixed for the session: a template that writes it (Llama 3.1, gpt-oss) then
  // renders the same prefix every turn.
  template_.set_now(std::chrono::system_clock::now());
  if (!settings_.system.empty()) messages_.push_back({"system", settings_.system});
  // Without a template of its own, a model gets ChatML, whose end-of-turn marker its vocab may
  // lack as a token: the text then ends the answer.
  if (template_.is_default()) stop_strings_ = {"<|im_end|>", "<|im_start|>"};
}

void Conversation::reset() {
  messages_.resize(first_exchange());
  seen_ = {};
  ctx_.clear();
  sampler_.reset();
}

std::optional<TurnStats> Conversation::answer(const std::string &message,
                                              const std::function<bool(std::string_view)> &on_piece) {
  messages_.push_back({"user", message});
  Transcript prompt = render();
  if (!make_room(prompt)) {
    messages_.pop_back();
    return std::nullopt;
  }
  seen_ = prompt;
  TurnStats stats;
  const auto start = std::chrono::steady_clock::now();
  const PrefixReuse reuse = ctx_.decode_reusing_prefix(prompt.tokens);
  stats.prompt_seconds = seconds_since(start);
  stats.n_reused = reuse.n_reused;
  stats.n_decoded = reuse.n_decoded;
  // The penalties see what was decoded this turn (the rest they saw when it was).
  for (int32_t t : std::span(prompt.tokens).subspan(static_cast<size_t>(reuse.n_reused))) sampler_.accept(t);

  GenerateParams params;
  params.max_tokens = settings_.max_tokens;
  params.stop = stop_strings_;
  params.on_piece = on_piece;
  const GenerateResult r = generate(ctx_, sampler_, std::span<const int32_t>{}, params);
  stats.n_generated = r.stats.n_generated;
  stats.generation_seconds = r.stats.generation_seconds;
  stats.stop = r.stop_reason;
  messages_.push_back({"assistant", r.text});
  remember_answer(r);
  return stats;
}

// The conversation as the prompt of the next answer. When its text extends what the model has
// seen (the last prompt and the answer as generated), only the new text is tokenized, as
// llama.cpp's chat does: the model reads its answer's own tokens again, where tokenizing their
// text anew could give other ids and cost the KV cache from there on.
Conversation::Transcript Conversation::render() const {
  Transcript t{template_.apply(messages_, /*add_generation_prompt=*/true, settings_.template_json), {}};
  if (!seen_.tokens.empty() && t.text.starts_with(seen_.text)) {
    t.tokens = seen_.tokens;
    const std::vector<int32_t> added =
        model_.tokenize(std::string_view(t.text).substr(seen_.text.size()), /*add_special=*/false, true);
    t.tokens.insert(t.tokens.end(), added.begin(), added.end());
    return t;
  }
  // A template that writes the BOS text itself (Llama 3) must not get a second BOS.
  const bool has_bos_text = !template_.bos_token().empty() && t.text.starts_with(template_.bos_token());
  t.tokens = model_.tokenize(t.text, /*add_special=*/!has_bos_text, /*parse_special=*/true);
  return t;
}

// The answer's tokens extend the transcript when their pieces spell exactly the text kept (not
// when a stop string or an interruption cut the text short of them).
void Conversation::remember_answer(const GenerateResult &r) {
  std::string spelled;
  for (int32_t t : r.tokens) spelled += model_.token_to_piece(t);
  if (spelled != r.text) {
    seen_ = {};
    return;
  }
  seen_.text += r.text;
  seen_.tokens.insert(seen_.tokens.end(), r.tokens.begin(), r.tokens.end());
}

// Drops the oldest exchanges until the prompt leaves room for an answer (max_tokens, or a quarter
// of the context); says so on stderr. False when even the newest message alone does not fit.
bool Conversation::make_room(Transcript &prompt) {
  const int32_t n_ctx = ctx_.n_ctx();
  const int32_t max_tokens = settings_.max_tokens;
  const int32_t room = max_tokens > 0 ? std::min(max_tokens, n_ctx / 2) : n_ctx / 4;
  int dropped = 0;
  const size_t before = prompt.tokens.size();
  while (static_cast<int64_t>(prompt.tokens.size()) + room > n_ctx && messages_.size() - first_exchange() > 1) {
    dropped += drop_oldest_exchange();
    prompt = render();
  }
  if (dropped > 0)
    fmt::print(stderr, "chat: the context ({} tokens) is full: dropped the oldest {} message(s), {} tokens{}\n", n_ctx,
               dropped, before - prompt.tokens.size(), first_exchange() ? "; the system prompt is kept" : "");
  if (static_cast<int64_t>(prompt.tokens.size()) < n_ctx) return true;
  fmt::print(stderr, "chat: this message makes a prompt of {} tokens, more than the context's {} (-c)\n",
             prompt.tokens.size(), n_ctx);
  return false;
}

// Drops the oldest message after the system prompt, with the answer that follows it; returns how
// many messages went.
int Conversation::drop_oldest_exchange() {
  const auto first = messages_.begin() + static_cast<std::ptrdiff_t>(first_exchange());
  const int n = first + 1 != messages_.end() && (first + 1)->role == "assistant" ? 2 : 1;
  messages_.erase(first, first + n);
  return n;
}

}  // namespace vramfit::cli
