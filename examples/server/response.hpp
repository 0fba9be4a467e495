// The JSON vramfit serve answers with, shaped exactly as OpenAI's: chat.completion and
// text_completion objects, their streamed chunks as server-sent events ("data: {json}\n\n", then
// "data: [DONE]\n\n"), the models list and vramfit's own memory report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "request.hpp"
#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"

namespace vramfit::server {

// What every object of one response shares.
struct ResponseHeader {
  Endpoint endpoint = Endpoint::chat;
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// "stop" (an end-of-generation token or a stop string) or "length" (max_tokens, a full context).
const char *finish_reason(StopReason reason);

// The whole answer of a request without "stream".
std::string completion_body(const ResponseHeader &header, std::string_view text, StopReason reason,
                            const Usage &usage);

// One server-sent event of a streamed answer. A chat stream's first chunk carries the role
// (role_chunk, chat only); then one per piece of text (text_chunk); the last names the finish reason with an
// empty delta (finish_chunk). With include_usage every chunk has "usage": null and one more
// follows with empty choices and the usage (usage_chunk). done_event ends the stream.
std::string role_chunk(const ResponseHeader &header, bool include_usage);
std::string text_chunk(const ResponseHeader &header, std::string_view text, bool include_usage);
std::string finish_chunk(const ResponseHeader &header, StopReason reason, bool include_usage);
std::string usage_chunk(const ResponseHeader &header, const Usage &usage);
std::string error_event(const std::string &error_body);
constexpr std::string_view done_event = "data: [DONE]\n\n";

// GET /v1/models: the one model; GET /v1/models/{id}: it alone.
std::string models_body(const std::string &model_id, int64_t created);
std::string model_body(const std::string &model_id, int64_t created);

// GET /v1/memory: the memory of every slot's context added up by memory and category (the
// weights, the device's overhead and staging are shared, counted once), with the plan's figures
// and the budget.
struct SlotMemory {
  MemoryReport report;
  bool busy = false;
};
std::string memory_body(const std::vector<SlotMemory> &slots);

}  // namespace vramfit::server
