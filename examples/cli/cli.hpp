// The `vramfit` command line: one binary, one file per sub-command.
//
// A sub-command registers itself with VRAMFIT_COMMAND; main() dispatches by name. Commands
// print results to stdout, diagnostics to stderr, and return the process exit code.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/offload.hpp"

namespace vramfit::cli {

using CommandFn = int (*)(std::span<const std::string_view> args);

struct Command {
  const char *name;
  const char *summary;
  CommandFn run;
};

bool register_command(Command command);

// Small helpers shared by sub-commands.
using vramfit::parse_size;  // sizes as users write them: "11.5GiB", "800MiB"
std::string format_bytes(uint64_t bytes);  // "41.42 GB (38.57 GiB)"
// True when any argument is --help or -h: the command then prints its usage and returns 0.
bool asks_for_help(std::span<const std::string_view> args);
using vramfit::json_quote;  // a JSON string literal that stays valid whatever bytes a file holds
// Flushes stdout; false when the write failed (a full disk, a closed pipe). main() then ends the
// command with exit code 1 and the OS reason, so a command that streams just stops writing.
bool flush_stdout() noexcept;
// A file's bytes exactly as stored; nullopt when it cannot be read, with the OS reason ("No such
// file or directory", "Is a directory") in *error when given.
std::optional<std::string> read_text_file(const std::string &path, std::string *error = nullptr);

}  // namespace vramfit::cli

#define VRAMFIT_CLI_CONCAT2(a, b) a##b
#define VRAMFIT_CLI_CONCAT(a, b) VRAMFIT_CLI_CONCAT2(a, b)
#define VRAMFIT_COMMAND(name, summary, fn)                                   \
  static const bool VRAMFIT_CLI_CONCAT(vramfit_registered_, __LINE__) =      \
      ::vramfit::cli::register_command(::vramfit::cli::Command{name, summary, fn})
