// The conversation `vramfit chat` holds: its messages, rendered with the model's chat template,
// and what the model has read of them, so each turn decodes only what the KV cache lacks
// (Context::decode_reusing_prefix) and a full context drops the oldest exchanges.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/chat.hpp"
#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::cli {

struct TurnStats {
  int32_t n_reused = 0, n_decoded = 0, n_generated = 0;
  double prompt_seconds = 0, generation_seconds = 0;
  StopReason stop = StopReason::eog;
};

struct ConversationSettings {
  std::string system;          // the system prompt ("" = none), kept for the whole conversation
  int32_t max_tokens = -1;     // per answer (-1: until the end of the answer or a full context)
  std::string template_json;   // extra template variables, a JSON object ("" = none)
};

class Conversation {
 public:
  Conversation(const Model &model, Context &ctx, Sampler &sampler, ConversationSettings settings);

  bool uses_default_template() const { return template_.is_default(); }

  // Forgets every exchange (the system prompt stays).
  void reset();

  // Answers `message`, streaming the text to `on_piece` (return false to stop the answer); nullopt
  // (with the reason on stderr) when the message alone does not fit the context.
  std::optional<TurnStats> answer(const std::string &message, const std::function<bool(std::string_view)> &on_piece);

 private:
  // Text the template rendered and the tokens the model saw for it.
  struct Transcript {
    std::string text;
    std::vector<int32_t> tokens;
  };

  size_t first_exchange() const { return !messages_.empty() && messages_.front().role == "system" ? 1 : 0; }
  Transcript render() const;
  void remember_answer(const GenerateResult &r);
  bool make_room(Transcript &prompt);
  int drop_oldest_exchange();

  const Model &model_;
  Context &ctx_;
  Sampler &sampler_;
  ConversationSettings settings_;
  ChatTemplate template_;
  std::vector<ChatMessage> messages_;
  Transcript seen_;  // what the model has read and written so far
  std::vector<std::string> stop_strings_;
};

}  // namespace vramfit::cli
