#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <map>
#include <string>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/log.hpp"
#include "vramfit/error.hpp"

namespace vramfit::cli {
namespace {

std::map<std::string, Command, std::less<>> &registry() {
  static std::map<std::string, Command, std::less<>> commands;
  return commands;
}

// To stdout when asked for (--help), to stderr after a mistake.
void print_usage(std::FILE *out) {
  fmt::print(out, "usage: vramfit <command> [options]\n\ncommands:\n");
  for (const auto &[name, command] : registry()) fmt::print(out, "  {:<10} {}\n", name, command.summary);
  fmt::print(out, "\n`vramfit help <command>` (or `vramfit <command> --help`) describes a command;\n"
                     "`vramfit --version` prints the version.\n");
}

int g_stdout_errno = 0;  // the first failed write to stdout (0: none)

}  // namespace

bool flush_stdout() noexcept {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  if (g_stdout_errno == 0) g_stdout_errno = errno ? errno : EIO;
  return false;
}

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

std::optional<std::string> read_text_file(const std::string &path, std::string *error) {
  // POSIX calls rather than a stream: errno says why ("Is a directory" shows only at read()).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string text;
  bool ok = fd >= 0;
  char buffer[1 << 16];
  while (ok) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  if (!ok && error) *error = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!ok) return std::nullopt;
  return text;
}

}  // namespace vramfit::cli

namespace {

// What a command wrote to stdout must have arrived: a full disk or a closed stdout is an error.
int check_stdout(std::string_view command, int exit_code) {
  if (vramfit::cli::flush_stdout()) return exit_code;
  fmt::print(stderr, "vramfit {}: error: writing to stdout failed: {}\n", command, std::strerror(vramfit::cli::g_stdout_errno));
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  using namespace vramfit::cli;
  const std::string_view first = argc < 2 ? std::string_view() : std::string_view(argv[1]);
  if (argc < 2 || first == "--help" || first == "-h") {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : check_stdout("--help", 0);
  }
  if (first == "--version" || first == "version") {
    fmt::print("vramfit {} (CUDA {})\n", VRAMFIT_CLI_VERSION, VRAMFIT_CLI_CUDA ? "built in" : "not built");
    return check_stdout("--version", 0);
  }
  std::vector<std::string_view> args(argv + 2, argv + argc);
  std::string_view command = first;
  if (first == "help") {  // `vramfit help COMMAND` is `vramfit COMMAND --help`
    if (args.empty()) {
      print_usage(stdout);
      return check_stdout("help", 0);
    }
    command = args[0];
    args = {"--help"};
  }
  auto it = registry().find(command);
  if (it == registry().end()) {
    fmt::print(stderr, "vramfit: unknown command '{}'\n", command);
    print_usage(stderr);
    return 2;
  }
  // The library says what a user must know (no GPU for the offload asked, a shrunk context...)
  // through its log: warnings and errors go to stderr.
  vramfit::set_log_callback(
      [](vramfit::LogLevel level, const char *message, void *) {
        if (level >= vramfit::LogLevel::warn) fmt::print(stderr, "warning: {}\n", message);
      },
      nullptr);
  try {
    return check_stdout(command, it->second.run(args));
  } catch (const UsageError &e) {  // a flag refused after parsing (a file -f names, ...)
    fmt::print(stderr, "vramfit {}: error: {} (see `vramfit {} --help`)\n", command, e.message, command);
    return 2;
  } catch (const vramfit::Error &e) {
    fmt::print(stderr, "vramfit {}: error: {}\n", command, e.what());
    return 1;
  } catch (const std::exception &e) {
    fmt::print(stderr, "vramfit {}: error: {}\n", command, e.what());
    return 1;
  }
}
