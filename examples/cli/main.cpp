#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <string>

#include "cli.hpp"
#include "vramfit/log.hpp"
#include "vramfit/error.hpp"

namespace vramfit::cli {
namespace {

std::map<std::string, Command, std::less<>> &registry() {
  static std::map<std::string, Command, std::less<>> commands;
  return commands;
}

void print_usage() {
  fmt::print(stderr, "usage: vramfit <command> [options]\n\ncommands:\n");
  for (const auto &[name, command] : registry()) fmt::print(stderr, "  {:<10} {}\n", name, command.summary);
  fmt::print(stderr, "\n`vramfit <command> --help` describes a command.\n");
}

}  // namespace

bool register_command(Command command) {
  registry().emplace(command.name, command);
  return true;
}

std::string format_bytes(uint64_t bytes) {
  return fmt::format("{:.2f} GB ({:.2f} GiB)", bytes / 1e9, bytes / (1024.0 * 1024 * 1024));
}

bool asks_for_help(std::span<const std::string_view> args) {
  return std::ranges::any_of(args, [](std::string_view a) { return a == "--help" || a == "-h"; });
}

namespace {

// The length of the well-formed UTF-8 sequence at text[pos] (Unicode's table 3-7), 0 when none
// starts there. (The library has its own; the CLI sees only the public API.)
size_t utf8_sequence_length(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return pos + i < text.size() ? static_cast<uint8_t>(text[pos + i]) : 0u; };
  const auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) { return byte(i) >= lo && byte(i) <= hi; };
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) return cont(1, b0 == 0xE0 ? 0xA0 : 0x80, b0 == 0xED ? 0x9F : 0xBF) && cont(2) ? 3 : 0;
  if (b0 >= 0xF0 && b0 <= 0xF4)
    return cont(1, b0 == 0xF0 ? 0x90 : 0x80, b0 == 0xF4 ? 0x8F : 0xBF) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

}  // namespace

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (size_t pos = 0; pos < text.size();) {
    const char c = text[pos];
    const size_t n = utf8_sequence_length(text, pos);
    if (n == 0) {
      out += "\\ufffd";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out.append(text, pos, n);
    }
    pos += n == 0 ? 1 : n;
  }
  return out + '"';
}

std::optional<std::string> read_text_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace vramfit::cli

int main(int argc, char **argv) {
  using namespace vramfit::cli;
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  auto it = registry().find(std::string_view(argv[1]));
  if (it == registry().end()) {
    fmt::print(stderr, "vramfit: unknown command '{}'\n", argv[1]);
    print_usage();
    return 2;
  }
  std::vector<std::string_view> args(argv + 2, argv + argc);
  // The library says what a user must know (no GPU for the offload asked, a shrunk context...)
  // through its log: warnings and errors go to stderr.
  vramfit::set_log_callback(
      [](vramfit::LogLevel level, const char *message, void *) {
        if (level >= vramfit::LogLevel::warn) fmt::print(stderr, "warning: {}\n", message);
      },
      nullptr);
  try {
    return it->second.run(args);
  } catch (const vramfit::Error &e) {
    fmt::print(stderr, "vramfit {}: error: {}\n", argv[1], e.what());
    return 1;
  } catch (const std::exception &e) {
    fmt::print(stderr, "vramfit {}: error: {}\n", argv[1], e.what());
    return 1;
  }
}
