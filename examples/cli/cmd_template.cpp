// `vramfit template (-m MODEL | --template FILE) ... < messages.json`: the prompt a chat template
// makes of a conversation, printed exactly (no newline added), for checking a template or feeding
// another tool.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "vramfit/chat.hpp"

namespace vramfit::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: vramfit template (-m MODEL | --template FILE) [--bos TEXT] [--eos TEXT] [--date YYYY-MM-DD]\n"
    "                        [--var NAME=JSON ...] [--no-generation-prompt] < messages.json\n"
    "  Renders a chat template over the messages read from stdin, a JSON array of OpenAI-style\n"
    "  messages ([{\"role\": \"user\", \"content\": \"Hi\"}, ...], passed to the template as they are),\n"
    "  and prints the prompt exactly, without a newline added.\n"
    "  -m MODEL                the GGUF file's tokenizer.chat_template and BOS / EOS texts (vocab-only\n"
    "                          files work); without a template, the default ChatML format (a note says so)\n"
    "  --template FILE         a Jinja template text file instead\n"
    "  --bos TEXT, --eos TEXT  the texts of `bos_token` / `eos_token` (default: the model's; none with\n"
    "                          --template)\n"
    "  --date YYYY-MM-DD       what strftime_now() formats (default: today), for reproducible prompts\n"
    "  --var NAME=JSON         an extra template variable, e.g. --var enable_thinking=false\n"
    "  --no-generation-prompt  do not end with the assistant's turn header (add_generation_prompt false)\n";

struct Options {
  std::string model;
  std::string template_file;
  std::optional<std::string> bos;
  std::optional<std::string> eos;
  std::optional<std::string> date;
  std::vector<std::pair<std::string, std::string>> vars;
  bool add_generation_prompt = true;
};

int usage_error(const std::string &message) {
  fmt::print(stderr, "vramfit template: error: {}\n{}", message, kUsage);
  return 2;
}

bool is_identifier(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// The --var pairs as one JSON object; the library checks the values' JSON.
std::string extra_variables(const Options &o) {
  if (o.vars.empty()) return {};
  std::string json = "{";
  for (size_t i = 0; i < o.vars.size(); ++i) json += fmt::format("{}\"{}\": {}", i ? ", " : "", o.vars[i].first, o.vars[i].second);
  return json + "}";
}

ChatTemplate load_template(const Options &o) {
  if (!o.model.empty()) {
    ChatTemplate t = ChatTemplate::from_gguf(o.model);
    if (t.is_default())
      fmt::print(stderr, "vramfit template: note: {} has no chat template; using the default ChatML format\n", o.model);
    if (!o.bos && !o.eos) return t;
    return ChatTemplate(t.source(), o.bos.value_or(t.bos_token()), o.eos.value_or(t.eos_token()));
  }
  std::string why;
  const std::optional<std::string> source = read_text_file(o.template_file, &why);
  if (!source) throw Error(ErrorCode::io, fmt::format("--template: cannot read '{}': {}", o.template_file, why));
  return ChatTemplate(*source, o.bos.value_or(""), o.eos.value_or(""));
}

int run_template(std::span<const std::string_view> args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    if (arg == "--no-generation-prompt") {
      o.add_generation_prompt = false;
      continue;
    }
    if (arg != "-m" && arg != "--template" && arg != "--bos" && arg != "--eos" && arg != "--date" && arg != "--var")
      return usage_error(fmt::format("unknown argument '{}'", arg));
    if (i + 1 >= args.size()) return usage_error(fmt::format("{} needs a value", arg));
    const std::string value(args[++i]);
    if (arg == "-m") o.model = value;
    else if (arg == "--template") o.template_file = value;
    else if (arg == "--bos") o.bos = value;
    else if (arg == "--eos") o.eos = value;
    else if (arg == "--date") o.date = value;
    else {
      const size_t eq = value.find('=');
      if (eq == std::string::npos || !is_identifier(std::string_view(value).substr(0, eq)))
        return usage_error(fmt::format("--var '{}': expected NAME=JSON with NAME a variable name", value));
      o.vars.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    }
  }
  if (o.model.empty() == o.template_file.empty()) return usage_error("give either -m MODEL or --template FILE");

  ChatTemplate tmpl = load_template(o);
  if (o.date) tmpl.set_date(*o.date);
  const std::string messages((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const std::string prompt = tmpl.apply_json(messages, o.add_generation_prompt, extra_variables(o));
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

VRAMFIT_COMMAND("template", "print the prompt a chat template makes of messages (JSON on stdin)", run_template);

}  // namespace vramfit::cli
