// `vramfit run`: generate text from a prompt, streaming it to stdout; what was decided (plan,
// memory) and the timings go to stderr.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::cli {
namespace {

std::atomic<bool> g_interrupted{false};

// The first Ctrl-C stops generation after the current token (the stats still print); a second
// one ends the process the default way.
extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);
}

const char *stop_text(StopReason reason) {
  switch (reason) {
    case StopReason::eog: return "end of text";
    case StopReason::stop_string: return "stop string";
    case StopReason::max_tokens: return "-n reached";
    case StopReason::callback: return "interrupted";
    case StopReason::context_full: return "context full";
  }
  return "";
}

int run(std::span<const std::string_view> args) {
  CommonOptions o;
  bool display_prompt = true;
  OptionParser parser("run", "-m MODEL (-p PROMPT | -f FILE) [options]",
                      "Generates text from a prompt and streams it to stdout (the prompt first, as llama.cpp does).\n"
                      "The plan, the memory table and the timings go to stderr. Ctrl-C stops generation and\n"
                      "still prints the timings.");
  add_model_options(parser, o);
  add_context_options(parser, o);
  add_sampling_options(parser, o);
  add_prompt_options(parser, o);
  parser.group("output");
  parser.flag({"--no-display-prompt"}, "print only the generated text (default: the prompt, then the text)",
              [&] { display_prompt = false; });
  if (auto exit_code = parser.parse(args)) return *exit_code;

  const auto start = std::chrono::steady_clock::now();
  const Model model = load_model(o);
  Context ctx(model, o.context);
  Sampler sampler(o.sampler);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "load: {:.2f} s\n", load_s);
  print_setup(model, ctx, o);

  g_interrupted.store(false);
  std::signal(SIGINT, on_interrupt);
  // As llama.cpp: the prompt, then the text as it streams; stdout ends its line and is flushed
  // before the stats go to stderr, so a terminal shows them on lines of their own.
  if (display_prompt) {
    fmt::print("{}", *o.prompt);
    flush_stdout();  // shown while the prompt is decoded
  }
  bool write_failed = false;
  o.generate.on_piece = [&write_failed](std::string_view piece) {
    fmt::print("{}", piece);
    // A full disk or a closed pipe: stop now rather than generate into the void (main says why).
    write_failed = !flush_stdout();
    return !write_failed && !g_interrupted.load();
  };
  const GenerateResult r = generate(ctx, sampler, *o.prompt, o.generate);
  std::signal(SIGINT, SIG_DFL);
  fmt::print("\n");
  flush_stdout();

  fmt::print(stderr, "prompt: {} tokens, {:.2f} tok/s\n", r.stats.n_prompt, r.stats.prompt_tok_s);
  fmt::print(stderr, "generation: {} tokens, {:.2f} tok/s (stopped: {})\n", r.stats.n_generated,
             r.stats.generation_tok_s, write_failed ? "writing to stdout failed" : stop_text(r.stop_reason));
  if (r.stop_reason == StopReason::context_full)
    fmt::print(stderr, "context full: all {} positions of -c {} are used; raise -c for a longer text\n", ctx.n_ctx(),
               ctx.n_ctx());
  // The table above was printed before the first token; the peaks may have grown since.
  std::string peaks;
  for (const DeviceMemory &d : ctx.memory_report().devices)
    peaks += fmt::format("{}{} {:.3f} MB", peaks.empty() ? "" : ", ", d.device.substr(0, d.device.find(' ')),
                         d.peak / 1e6);
  fmt::print(stderr, "memory peak: {}\n", peaks);
  if (r.stop_reason == StopReason::callback && g_interrupted.load()) return 130;  // as a shell reports SIGINT
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("run", "generate text from a prompt (streams to stdout)", run);

}  // namespace vramfit::cli
