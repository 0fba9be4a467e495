#include "vramfit/generate.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "vramfit/error.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Bytes at the end of `text` that start a UTF-8 character whose continuation bytes have not
// arrived yet.
size_t incomplete_utf8_tail(std::string_view text) {
  for (size_t back = 1; back <= std::min<size_t>(3, text.size()); ++back) {
    const auto c = static_cast<unsigned char>(text[text.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

// Streams text to the callback, holding back what might still become a stop string or the
// first bytes of a UTF-8 character.
class TextStream {
 public:
  TextStream(const GenerateParams &params, std::string &out) : params_(params), out_(out) {}

  // Adds a piece; returns the reason to stop, if any.
  std::optional<StopReason> push(std::string_view piece) {
    pending_ += piece;
    for (const std::string &stop : params_.stop) {
      if (stop.empty()) continue;
      if (size_t at = pending_.find(stop); at != std::string::npos) {
        pending_.resize(at);
        flush();
        return StopReason::stop_string;
      }
    }
    const size_t keep = std::max(stop_prefix_tail(), incomplete_utf8_tail(pending_));
    if (!emit(pending_.size() - keep)) return StopReason::callback;
    return std::nullopt;
  }

  // Emits everything held back (at the end of generation).
  bool flush() { return emit(pending_.size()); }

 private:
  // Longest suffix of pending_ that is a proper prefix of a stop string.
  size_t stop_prefix_tail() const {
    size_t longest = 0;
    for (const std::string &stop : params_.stop)
      for (size_t len = std::min(stop.size() - (stop.empty() ? 0 : 1), pending_.size()); len > longest; --len)
        if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(stop).substr(0, len)) {
          longest = len;
          break;
        }
    return longest;
  }

  bool emit(size_t n) {
    if (n == 0) return true;
    const std::string_view text(pending_.data(), n);
    out_ += text;
    const bool go_on = !params_.on_piece || params_.on_piece(text);
    pending_.erase(0, n);
    return go_on;
  }

  const GenerateParams &params_;
  std::string &out_;
  std::string pending_;
};

}  // namespace

GenerateResult generate(Context &ctx, Sampler &sampler, std::string_view prompt, const GenerateParams &params) {
  const std::vector<int32_t> tokens = ctx.model().tokenize(prompt, /*add_special=*/ctx.n_past() == 0);
  return generate(ctx, sampler, std::span<const int32_t>(tokens), params);
}

GenerateResult generate(Context &ctx, Sampler &sampler, std::span<const int32_t> prompt_tokens,
                        const GenerateParams &params) {
  const Model &model = ctx.model();
  GenerateResult result;
  TextStream stream(params, result.text);

  auto decode = [&](std::span<const int32_t> tokens) {
    std::span<const float> out;
    if (!params.run_decode) return ctx.decode(tokens);
    params.run_decode([&] { out = ctx.decode(tokens); });
    if (out.empty()) throw Error(ErrorCode::invalid_argument, "GenerateParams.run_decode did not call decode");
    return out;
  };

  auto start = Clock::now();
  for (int32_t t : prompt_tokens) sampler.accept(t);
  std::span<const float> logits = prompt_tokens.empty() ? ctx.logits(-1) : decode(prompt_tokens);
  result.stats.n_prompt = static_cast<int32_t>(prompt_tokens.size());
  result.stats.prompt_seconds = seconds_since(start);

  start = Clock::now();
  std::optional<StopReason> stop;
  while (!stop) {
    if (params.max_tokens >= 0 && static_cast<int32_t>(result.tokens.size()) >= params.max_tokens) {
      stop = StopReason::max_tokens;
      break;
    }
    const int32_t token = sampler.sample(logits);
    sampler.accept(token);
    if (model.is_eog(token)) {
      stop = StopReason::eog;
      break;
    }
    result.tokens.push_back(token);
    stop = stream.push(model.token_to_piece(token));
    if (stop) break;
    if (params.max_tokens >= 0 && static_cast<int32_t>(result.tokens.size()) >= params.max_tokens) {
      stop = StopReason::max_tokens;  // without decoding a token nobody will read the logits of
      break;
    }
    if (ctx.n_past() >= ctx.n_ctx()) {
      stop = StopReason::context_full;
      break;
    }
    logits = decode(std::span<const int32_t>(&token, 1));
  }
  if (*stop != StopReason::stop_string && *stop != StopReason::callback) stream.flush();
  result.stop_reason = *stop;
  result.stats.generation_seconds = seconds_since(start);
  result.stats.n_generated = static_cast<int32_t>(result.tokens.size());
  auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
  result.stats.prompt_tok_s = rate(result.stats.n_prompt, result.stats.prompt_seconds);
  result.stats.generation_tok_s = rate(result.stats.n_generated, result.stats.generation_seconds);
  return result;
}

}  // namespace vramfit
