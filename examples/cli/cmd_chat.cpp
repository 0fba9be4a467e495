// `vramfit chat`: an interactive conversation with a model, in its own chat template, streaming
// the answers. Each turn renders the whole conversation again and decodes only what the KV cache
// does not already hold (Context::decode_reusing_prefix); when the context is full, the oldest
// exchanges go (the system prompt stays). Ctrl-C stops an answer; at the prompt it ends the
// program. With stdin piped, each line is one user message; each answer ends with a newline.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/chat.hpp"
#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::cli {
namespace {

// ---------------------------------------------------------------- Ctrl-C

// SIGINT while an answer is generated stops that answer; at the prompt it ends the program (the
// read is interrupted: the handler is installed without SA_RESTART).
std::atomic<bool> g_answering{false};
std::atomic<bool> g_stop_answer{false};
std::atomic<bool> g_quit{false};

extern "C" void on_sigint(int) {
  if (g_answering) g_stop_answer = true;
  else g_quit = true;
}

void install_sigint_handler() {
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
}

// ---------------------------------------------------------------- the conversation

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct TurnStats {
  int32_t n_reused = 0, n_decoded = 0, n_generated = 0;
  double prompt_seconds = 0, generation_seconds = 0;
  StopReason stop = StopReason::eog;
};

class Conversation {
 public:
  // max_tokens: per answer (-1: until the end of the answer or a full context).
  Conversation(const Model &model, Context &ctx, Sampler &sampler, const std::string &system, int32_t max_tokens)
      : model_(model), ctx_(ctx), sampler_(sampler), max_tokens_(max_tokens),
        template_(ChatTemplate::from_model(model)) {
    // Today's date is fixed for the session: a template that writes it (Llama 3.1, gpt-oss) then
    // renders the same prefix every turn.
    template_.set_now(std::chrono::system_clock::now());
    if (!system.empty()) messages_.push_back({"system", system});
    // Without a template of its own, a model gets ChatML, whose end-of-turn marker its vocab may
    // lack as a token: the text then ends the answer.
    if (template_.is_default()) stop_strings_ = {"<|im_end|>", "<|im_start|>"};
  }

  bool uses_default_template() const { return template_.is_default(); }

  // Forgets every exchange (the system prompt stays).
  void reset() {
    messages_.resize(first_exchange());
    seen_ = {};
    ctx_.clear();
    sampler_.reset();
  }

  // Answers `message`, streaming the text to `on_piece`; nullopt (with the reason on stderr) when
  // the message alone does not fit the context.
  std::optional<TurnStats> answer(const std::string &message, const std::function<bool(std::string_view)> &on_piece) {
    messages_.push_back({"user", message});
    Transcript prompt = render();
    if (!make_room(prompt)) {
      messages_.pop_back();
      return std::nullopt;
    }
    seen_ = prompt;
    TurnStats stats;
    auto start = std::chrono::steady_clock::now();
    const PrefixReuse reuse = ctx_.decode_reusing_prefix(prompt.tokens);
    stats.prompt_seconds = seconds_since(start);
    stats.n_reused = reuse.n_reused;
    stats.n_decoded = reuse.n_decoded;
    // The penalties see what was decoded this turn (the rest they saw when it was).
    for (int32_t t : std::span(prompt.tokens).subspan(static_cast<size_t>(reuse.n_reused))) sampler_.accept(t);

    GenerateParams params;
    params.max_tokens = max_tokens_;
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

 private:
  size_t first_exchange() const { return !messages_.empty() && messages_.front().role == "system" ? 1 : 0; }

  // Text the template rendered and the tokens the model saw for it.
  struct Transcript {
    std::string text;
    std::vector<int32_t> tokens;
  };

  // The conversation as the prompt of the next answer. When its text extends what the model has
  // seen (the last prompt and the answer as generated), only the new text is tokenized, as
  // llama.cpp's chat does: the model reads its answer's own tokens again, where tokenizing their
  // text anew could give other ids and cost the KV cache from there on.
  Transcript render() const {
    Transcript t{template_.apply(messages_, /*add_generation_prompt=*/true), {}};
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
  void remember_answer(const GenerateResult &r) {
    std::string spelled;
    for (int32_t t : r.tokens) spelled += model_.token_to_piece(t);
    if (spelled != r.text) {
      seen_ = {};
      return;
    }
    seen_.text += r.text;
    seen_.tokens.insert(seen_.tokens.end(), r.tokens.begin(), r.tokens.end());
  }

  // Drops the oldest exchanges until the prompt leaves room for an answer (n_predict tokens, or a
  // quarter of the context); says so on stderr. False when even the newest message alone does
  // not fit.
  bool make_room(Transcript &prompt) {
    const int32_t n_ctx = ctx_.n_ctx();
    const int32_t room = max_tokens_ > 0 ? std::min(max_tokens_, n_ctx / 2) : n_ctx / 4;
    int dropped = 0;
    const size_t before = prompt.tokens.size();
    while (static_cast<int64_t>(prompt.tokens.size()) + room > n_ctx && messages_.size() - first_exchange() > 1) {
      dropped += drop_oldest_exchange();
      prompt = render();
    }
    if (dropped > 0)
      fmt::print(stderr, "chat: the context ({} tokens) is full: dropped the oldest {} message(s), {} tokens{}\n",
                 n_ctx, dropped, before - prompt.tokens.size(), first_exchange() ? "; the system prompt is kept" : "");
    if (static_cast<int64_t>(prompt.tokens.size()) < n_ctx) return true;
    fmt::print(stderr, "chat: this message makes a prompt of {} tokens, more than the context's {} (-c)\n",
               prompt.tokens.size(), n_ctx);
    return false;
  }

  // Drops the oldest message after the system prompt, with the answer that follows it; returns
  // how many messages went.
  int drop_oldest_exchange() {
    const auto first = messages_.begin() + static_cast<std::ptrdiff_t>(first_exchange());
    const int n = first + 1 != messages_.end() && (first + 1)->role == "assistant" ? 2 : 1;
    messages_.erase(first, first + n);
    return n;
  }

  const Model &model_;
  Context &ctx_;
  Sampler &sampler_;
  int32_t max_tokens_;
  ChatTemplate template_;
  std::vector<ChatMessage> messages_;
  Transcript seen_;  // what the model has read and written so far
  std::vector<std::string> stop_strings_;
};

// ---------------------------------------------------------------- the terminal

// tokens/s of the answer and of the prompt, how much of it was reused, context used, device memory.
std::string footer(const TurnStats &s, const Context &ctx) {
  auto rate = [](double n, double seconds) { return seconds > 0 ? n / seconds : 0.0; };
  std::string line = fmt::format(
      "[{} tokens, {:.1f} tok/s | prompt: {} reused, {} decoded, {:.1f} tok/s | context {}/{}", s.n_generated,
      rate(s.n_generated, s.generation_seconds), s.n_reused, s.n_decoded, rate(s.n_decoded, s.prompt_seconds),
      ctx.n_past(), ctx.n_ctx());
  const MemoryReport mem = ctx.memory_report();
  if (mem.devices.size() > 1) {
    const DeviceMemory &d = mem.devices.back();
    line += fmt::format(" | device {:.1f} of {:.1f} MiB budget (peak {:.1f})", d.total() / 1048576.0,
                        d.budget / 1048576.0, d.peak / 1048576.0);
  }
  return line + "]";
}

void say_why_it_stopped(const TurnStats &s) {
  if (s.stop == StopReason::callback) fmt::print(stderr, "chat: answer stopped (Ctrl-C)\n");
  if (s.stop == StopReason::context_full)
    fmt::print(stderr, "chat: the context is full: the answer was cut; the next message drops the oldest ones\n");
  if (s.stop == StopReason::max_tokens) fmt::print(stderr, "chat: the answer reached -n {} tokens\n", s.n_generated);
}

constexpr const char *kDescription =
    "Talks with a model in its chat template (tokenizer.chat_template; a file without one gets ChatML,\n"
    "<|im_start|>ROLE\\nTEXT<|im_end|>\\n, and an answer also ends at the text <|im_end|>). Each line read\n"
    "is a user message; the answer streams to stdout and ends with a newline, then a stats line goes\n"
    "to stderr. Each turn decodes only what the KV cache does not hold yet; when the context is full\n"
    "the oldest messages are dropped (the system prompt stays) and stderr says so. With stdin piped:\n"
    "one message per line, EOF ends. /reset forgets the conversation, /exit ends it; Ctrl-C stops the\n"
    "current answer, and at the prompt ends the program.";

int run_chat(std::span<const std::string_view> args) {
  CommonOptions o;
  std::string system;
  OptionParser parser("chat", "-m MODEL [--system TEXT] [options]", kDescription);
  add_model_options(parser, o);
  add_context_options(parser, o);
  add_sampling_options(parser, o);
  parser.group("chat");
  parser.option({"--system"}, "TEXT", "system prompt, kept for the whole conversation",
                [&](std::string_view v) { system = v; });
  if (auto exit_code = parser.parse(args)) return *exit_code;

  const Model model = load_model(o);
  Context ctx(model, o.context);
  Sampler sampler(o.sampler);
  print_setup(model, ctx, o);
  Conversation chat(model, ctx, sampler, system, o.generate.max_tokens);
  const bool interactive = isatty(STDIN_FILENO) != 0;
  fmt::print(stderr, "chat: {}{}; /reset forgets the conversation, /exit ends it{}\n",
             chat.uses_default_template() ? "no chat template in the file: ChatML" : "the model's chat template",
             system.empty() ? "" : ", with a system prompt", interactive ? ", Ctrl-C stops an answer" : "");
  install_sigint_handler();

  std::string line;
  bool write_failed = false;
  while (!write_failed) {
    if (interactive) {
      fmt::print("> ");
      flush_stdout();
    }
    if (g_quit || !std::getline(std::cin, line)) break;
    if (line == "/exit") break;
    if (line == "/reset") {
      chat.reset();
      fmt::print(stderr, "chat: conversation reset\n");
      continue;
    }
    if (line.empty()) continue;
    g_stop_answer = false;
    g_answering = true;
    const std::optional<TurnStats> stats = chat.answer(line, [&write_failed](std::string_view piece) {
      if (g_stop_answer) return false;
      fmt::print("{}", piece);
      // A closed pipe or a full disk: stop (main says why).
      write_failed = !flush_stdout();
      return !write_failed;
    });
    g_answering = false;
    if (!stats) continue;
    fmt::print("\n");
    write_failed = write_failed || !flush_stdout();
    say_why_it_stopped(*stats);
    fmt::print(stderr, "{}\n", footer(*stats, ctx));
  }
  if (g_quit) {
    if (interactive) fmt::print("\n");
    return 130;  // as a shell reports a program ended by SIGINT
  }
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("chat", "talk with a model in its chat template (streams; piped stdin: one message per line)",
                run_chat);

}  // namespace vramfit::cli
