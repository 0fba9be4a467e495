// `vramfit tokenize -m MODEL [--no-bos] [--parse-special] (TEXT | -f FILE)`: the token ids of a
// text, space separated on one line. Works on vocab-only GGUF files.
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include <fmt/ranges.h>

#include "cli.hpp"
#include "vramfit/tokenizer.hpp"

namespace vramfit::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: vramfit tokenize -m MODEL [--no-bos] [--parse-special] (TEXT | -f FILE)\n"
    "  Prints the token ids of TEXT (or of the contents of FILE), space separated, on one line.\n"
    "  MODEL may be a vocab-only GGUF file.\n"
    "  -m MODEL         the GGUF file whose tokenizer to use\n"
    "  --no-bos         do not add BOS (or EOS / SEP) even where the vocabulary asks for it\n"
    "  --parse-special  control tokens written in the text (\"<s>\", \"<|endoftext|>\") become their ids\n"
    "  -f FILE          read the text from FILE (bytes as they are, no newline removed)\n";

struct Options {
  std::string model;
  std::optional<std::string> text;
  std::optional<std::string> file;
  bool add_special = true;
  bool parse_special = false;
};

int usage_error(const std::string &message) {
  fmt::print(stderr, "vramfit tokenize: error: {}\n{}", message, kUsage);
  return 2;
}

int run_tokenize(std::span<const std::string_view> args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    if (arg == "--no-bos") {
      o.add_special = false;
    } else if (arg == "--parse-special") {
      o.parse_special = true;
    } else if (arg == "-m" || arg == "-f") {
      if (i + 1 >= args.size()) return usage_error(fmt::format("{} needs a value", arg));
      (arg == "-m" ? o.model : o.file.emplace()) = std::string(args[++i]);
    } else if (arg.starts_with("-") && arg.size() > 1) {
      return usage_error(fmt::format("unknown option '{}'", arg));
    } else if (o.text) {
      return usage_error(fmt::format("unexpected argument '{}' (quote the text)", arg));
    } else {
      o.text = std::string(arg);
    }
  }
  if (o.model.empty()) return usage_error("no model given (-m MODEL)");
  if (o.text.has_value() == o.file.has_value()) return usage_error("give either TEXT or -f FILE");
  if (o.file) {
    o.text = read_text_file(*o.file);
    if (!o.text) {
      fmt::print(stderr, "vramfit tokenize: error: cannot read '{}'\n", *o.file);
      return 1;
    }
  }

  const Vocabulary vocab = Vocabulary::load(o.model);
  const std::vector<int32_t> ids = vocab.tokenize(*o.text, o.add_special, o.parse_special);
  fmt::print("{}\n", fmt::join(ids, " "));
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("tokenize", "print the token ids of a text (vocab-only files work)", run_tokenize);

}  // namespace vramfit::cli
