// The flags of `vramfit chat`: the model and where it runs, the context, the sampler, the chat.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "vramfit/context.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::cli {

extern const char *const kChatUsage;

struct ChatOptions {
  std::string model;
  std::string system;        // the system prompt ("" = none)
  int32_t n_predict = -1;    // tokens per answer at most (-1: until end of generation or a full context)
  ModelParams model_params;  // device, budget, placement; n_ctx/n_batch/kv_type as the context's
  ContextParams context;
  SamplerParams sampler;
};

struct BadChatFlag {
  std::string message;
};

// Throws BadChatFlag naming the flag and the problem.
ChatOptions parse_chat_options(std::span<const std::string_view> args);

}  // namespace vramfit::cli
