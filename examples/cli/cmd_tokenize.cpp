// `vramfit tokenize -m MODEL [--no-bos] [--parse-special] (TEXT | -p TEXT | -f FILE)`: the token ids of a
// text, space separated on one line. Works on vocab-only GGUF files.
#include <optional>
#include <string>

#include <fmt/ranges.h>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/tokenizer.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kDescription =
    "Prints the token ids of TEXT (or of the contents of FILE), space separated, on one line.\n"
    "MODEL may be a vocab-only GGUF file.";

int run_tokenize(std::span<const std::string_view> args) {
  CommonOptions o;  // its prompt group: -p TEXT / -f FILE, as in run
  std::string model;
  bool add_special = true, parse_special = false;
  OptionParser parser("tokenize", "-m MODEL [--no-bos] [--parse-special] (TEXT | -p TEXT | -f FILE)", kDescription);
  parser.option({"-m", "--model"}, "FILE", "the GGUF file whose tokenizer to use", [&model](std::string_view v) {
    model = std::string(v);
  });
  parser.flag({"--no-bos"}, "do not add BOS (or EOS / SEP) even where the vocabulary asks for it",
              [&add_special] { add_special = false; });
  parser.flag({"--parse-special"}, "control tokens written in the text (\"<s>\", \"<|endoftext|>\") become their ids",
              [&parse_special] { parse_special = true; });
  add_prompt_options(parser, o, /*required=*/false);
  parser.positional("TEXT", [&o](std::string_view v) {
    if (o.prompt) throw UsageError{fmt::format("unexpected argument '{}': give one text (quote it)", v)};
    o.prompt = std::string(v);
  });
  parser.finally([&] {
    if (model.empty()) throw UsageError{"no model: pass -m MODEL"};
    if (!o.prompt) throw UsageError{"no text: give TEXT, -p TEXT or -f FILE"};
  });
  if (auto exit_code = parser.parse(args)) return *exit_code;

  const Vocabulary vocab = Vocabulary::load(model);
  const std::vector<int32_t> ids = vocab.tokenize(*o.prompt, add_special, parse_special);
  fmt::print("{}\n", fmt::join(ids, " "));
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("tokenize", "print the token ids of a text (vocab-only files work)", run_tokenize);

}  // namespace vramfit::cli
