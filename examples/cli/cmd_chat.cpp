// `vramfit chat`: an interactive conversation with a model, in its own chat template, streaming
// the answers (the conversation itself: chat_conversation.hpp). Ctrl-C stops an answer; at the
// prompt it ends the program. With stdin piped, each line is one user message; each answer ends
// with a newline.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat_conversation.hpp"
#include "cli.hpp"
#include "options.hpp"
#include "vramfit/context.hpp"
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

// ---------------------------------------------------------------- flags

// --var NAME=JSON as a member of a JSON object; the template engine checks the JSON.
std::string template_variable(std::string_view arg) {
  const size_t eq = arg.find('=');
  const std::string_view name = arg.substr(0, eq);
  const bool plain_name = !name.empty() && std::ranges::all_of(name, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  if (eq == std::string_view::npos || !plain_name)
    throw UsageError{fmt::format("--var '{}': expected NAME=JSON, NAME letters, digits and _", arg)};
  return fmt::format("\"{}\": {}", name, arg.substr(eq + 1));
}

std::string join(const std::vector<std::string> &parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

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
  ConversationSettings settings;
  std::vector<std::string> variables;  // "\"NAME\": JSON" members of the template's extra variables
  OptionParser parser("chat", "-m MODEL [--system TEXT] [options]", kDescription);
  add_model_options(parser, o);
  add_context_options(parser, o);
  add_sampling_options(parser, o);
  parser.group("chat");
  parser.option({"--system"}, "TEXT", "system prompt, kept for the whole conversation",
                [&](std::string_view v) { settings.system = v; });
  parser.option({"--var"}, "NAME=JSON",
                "an extra chat-template variable, as `vramfit template --var`, e.g.\n"
                "enable_thinking=false (Qwen3), reasoning_effort='\"low\"' (gpt-oss); repeatable",
                [&](std::string_view v) { variables.push_back(template_variable(v)); });
  if (auto exit_code = parser.parse(args)) return *exit_code;
  settings.max_tokens = o.generate.max_tokens;
  if (!variables.empty()) settings.template_json = fmt::format("{{{}}}", join(variables, ", "));

  const Model model = load_model(o);
  Context ctx(model, o.context);
  Sampler sampler(o.sampler);
  print_setup(model, ctx, o);
  const bool has_system = !settings.system.empty();
  Conversation chat(model, ctx, sampler, std::move(settings));
  const bool interactive = isatty(STDIN_FILENO) != 0;
  fmt::print(stderr, "chat: {}{}; /reset forgets the conversation, /exit ends it{}\n",
             chat.uses_default_template() ? "no chat template in the file: ChatML" : "the model's chat template",
             has_system ? ", with a system prompt" : "", interactive ? ", Ctrl-C stops an answer" : "");
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
