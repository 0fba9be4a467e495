// An OpenAI request body (POST /v1/chat/completions or /v1/completions) read into what vramfit
// needs to serve it. Only the JSON is looked at here: the model name, the prompt's length and the
// queue are the service's business.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vramfit::server {

enum class Endpoint { chat, completion };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::chat;
  std::string model;          // as asked; empty when the body has none
  std::string messages_json;  // chat: the messages, each content a string (text parts joined)
  std::string prompt;         // completion
  std::optional<int32_t> max_tokens;  // max_tokens / max_completion_tokens; unset: until the end
  std::optional<float> temperature;   // [0, 2]
  std::optional<float> top_p;         // [0, 1]
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;      // at most 4, as OpenAI
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage: a last chunk with the usage
};

// Throws ApiError (400) naming the field: malformed JSON, a field of the wrong type or out of
// range, no messages / prompt, what vramfit does not do (n > 1, token-id prompts). Fields vramfit
// does not use are ignored, as llama-server does, so clients that send more still work.
CompletionRequest parse_request(Endpoint endpoint, std::string_view body);

}  // namespace vramfit::server
