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
