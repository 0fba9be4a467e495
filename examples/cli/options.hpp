// One option parser and one set of defaults for every sub-command, so a flag means the same thing
// in `run`, `bench`, `chat`, `serve`, `plan`...
//
// A command fills a CommonOptions through an OptionParser:
//
//   CommonOptions o;
//   OptionParser parser("run", "-m MODEL (-p PROMPT | -f FILE) [options]", "Generates text ...");
//   add_model_options(parser, o);      // -m, --device, --vram-budget, -ngl, -ot, --min-ctx, ...
//   add_context_options(parser, o);    // -c, -b, -t, --kv-type
//   add_sampling_options(parser, o);   // --temp, --top-k, ..., --seed, -n
//   add_prompt_options(parser, o);     // -p, -f
//   parser.flag({"--no-display-prompt"}, "print only the generated text", [&] { ... });
//   if (auto exit_code = parser.parse(args)) return *exit_code;   // --help: 0, bad flag: 2
//   const Model model = load_model(o);  // resolves the context, plans, loads (progress bar)
//   Context ctx(model, o.context);  Sampler sampler(o.sampler);
//
// Flags take "--opt value" or "--opt=value". A bad value is refused at parse time, naming the
// flag and the forms it accepts, so the library's own checks are a second line.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/model.hpp"
#include "vramfit/offload.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::cli {

// The shared defaults (llama.cpp's where it has one).
inline constexpr int32_t kDefaultCtx = 4096;     // or the trained length when that is smaller
inline constexpr uint32_t kDefaultMinCtx = 512;  // how far a defaulted context may shrink to fit
inline constexpr int32_t kDefaultPredict = 128;

// A flag's value was refused; parse() prints the message and returns exit code 2.
struct UsageError {
  std::string message;
};

// Everything the shared groups set. Fields keep the library's defaults except where noted.
struct CommonOptions {
  std::string model_path;  // -m
  ModelParams model;       // --device, placement flags; n_ctx/n_batch/kv_type set by load_model()
  ContextParams context;   // -c (0 until resolved: see load_model), -b, -t, --kv-type
  SamplerParams sampler;   // seed: random unless --seed N (see seed_is_random)
  GenerateParams generate; // -n (default 128)
  std::optional<std::string> prompt;  // -p TEXT or the bytes of -f FILE
  std::string prompt_file;            // -f FILE ("" when none)
  bool ctx_given = false;             // -c was on the command line
  bool min_ctx_given = false;         // --min-ctx was on the command line
  bool batch_given = false;           // -b was on the command line
  bool seed_is_random = false;        // no --seed, or --seed -1: print it so the run can be repeated
  CommonOptions();
};

class OptionParser {
 public:
  // usage: what follows "vramfit COMMAND " on the usage line; description: a paragraph (may be "").
  OptionParser(std::string command, std::string usage, std::string description);

  // A flag with a value: handler gets the text and throws UsageError when it is bad. A name
  // registered twice throws std::logic_error (a programming mistake, caught by main()).
  void option(std::initializer_list<const char *> names, std::string metavar, std::string help,
              std::function<void(std::string_view value)> handler);
  // A switch: no value ("--json=1" is refused).
  void flag(std::initializer_list<const char *> names, std::string help, std::function<void()> handler);
  // Arguments that are not flags go here (e.g. quantize's IN OUT TYPE); without one they are refused.
  void positional(std::string metavar, std::function<void(std::string_view value)> handler);
  // Runs after every flag is read: cross-flag checks and derived defaults (throw UsageError).
  void finally(std::function<void()> check);
  // The flags added from now on are listed under this heading in --help.
  void group(std::string heading);

  // nullopt: go on. Otherwise the exit code: 0 after printing --help to stdout, 2 after printing
  // "vramfit COMMAND: error: ..." to stderr.
  std::optional<int> parse(std::span<const std::string_view> args);
  void print_help(std::FILE *out) const;
  const std::string &command() const noexcept { return command_; }

 private:
  struct Flag {
    std::vector<std::string> names;
    std::string metavar;  // "" for a switch
    std::string help;
    std::string heading;
    std::function<void(std::string_view)> handler;
  };
  const Flag *find(std::string_view name) const;
  void parse_or_throw(std::span<const std::string_view> args);

  std::string command_, usage_, description_, heading_;
  std::vector<Flag> flags_;
  std::string positional_metavar_;
  std::function<void(std::string_view)> positional_;
  std::vector<std::function<void()>> checks_;
};

// The shared groups. Each adds its flags under its heading and its checks.
void add_model_options(OptionParser &parser, CommonOptions &o);     // -m + device + placement
void add_context_options(OptionParser &parser, CommonOptions &o);   // -c -b -t --kv-type
void add_sampling_options(OptionParser &parser, CommonOptions &o);  // sampler + --seed + -n
// -p / -f; with `required`, parse() refuses a command line with neither.
void add_prompt_options(OptionParser &parser, CommonOptions &o, bool required = true);

// The shared default context: kDefaultCtx, or the trained length when smaller (unknown: 0).
int32_t default_ctx(int32_t n_ctx_train);

// Sets o.context.n_ctx (and o.model's n_ctx, n_batch, kv_type) as load_model() does: -c (warning
// when above n_ctx_train), else default_ctx() with --min-ctx defaulting to kDefaultMinCtx.
void resolve_context(CommonOptions &o, int32_t n_ctx_train);

// Loads o.model_path as the flags say. Resolves the context first: -c, or 4096 (the trained length
// when smaller); with a device and a defaulted context the plan may shrink it to --min-ctx (512)
// and says so. Warns when -c exceeds the trained length. Shows a load bar on a terminal. On
// return o.context.n_ctx and o.model.{n_ctx,n_batch,kv_type} hold what the model was loaded for.
Model load_model(CommonOptions &o);

// To stderr: the model, context, threads, seed, the offload plan and its notes, and the memory table
// (with why "peak" may be below "total"). Call before the first token.
void print_setup(const Model &model, const Context &ctx, const CommonOptions &o);

// Value parsers for a command's own flags: they throw UsageError naming `flag`.
int64_t parse_integer(std::string_view flag, std::string_view text, int64_t min, int64_t max);
double parse_real(std::string_view flag, std::string_view text);
// A byte size ("6GiB", "800 MB", "11.5GB"); a bare number must be at least 1 MiB (below that it
// is almost surely a forgotten unit).
uint64_t parse_size_flag(std::string_view flag, std::string_view text);
// The bytes of a file named by `flag`; UsageError with the OS reason when it cannot be read.
std::string read_text_file_or_throw(std::string_view flag, const std::string &path);
// "-t N": 0 means all cores; more than the hardware threads is reduced to them, with a warning.
int32_t parse_threads(std::string_view flag, std::string_view text);

}  // namespace vramfit::cli
