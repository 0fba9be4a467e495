// Shared by the libFuzzer harnesses: where the reference data is, and writing seed inputs.
//
// Each harness derives its seed corpus from ../shared itself (scripts/fuzz.sh runs it once with
// VRAMFIT_FUZZ_SEEDS=DIR), so seeds are typed by the harness that reads them and no file of
// ../shared is ever copied into the repository.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.hpp"

namespace vramfit::fuzz {

// VRAMFIT_TEST_DATA, else ../shared from the working directory (scripts/fuzz.sh runs from the
// source root).
inline std::filesystem::path shared_dir() {
  if (const char *env = std::getenv("VRAMFIT_TEST_DATA"); env && *env) return env;
  return std::filesystem::current_path() / ".." / "shared";
}

inline std::optional<std::string> read_file(const std::filesystem::path &path, size_t max_bytes = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes;
  bytes.resize(max_bytes == SIZE_MAX ? std::filesystem::file_size(path) : max_bytes);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

// Invariant violated: abort, so libFuzzer records the input as a crash.
[[noreturn]] inline void violated(const char *what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Seed writing: when VRAMFIT_FUZZ_SEEDS names a folder, LLVMFuzzerInitialize calls the harness's
// seed writer with a SeedWriter into it and exits.
class SeedWriter {
 public:
  explicit SeedWriter(std::filesystem::path dir) : dir_(std::move(dir)) { std::filesystem::create_directories(dir_); }
  void add(std::string_view bytes) {
    std::ofstream(dir_ / ("seed-" + std::to_string(count_++)), std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  size_t count() const noexcept { return count_; }

 private:
  std::filesystem::path dir_;
  size_t count_ = 0;
};

template <class WriteSeeds>
void write_seeds_if_asked(WriteSeeds write_seeds) {
  const char *dir = std::getenv("VRAMFIT_FUZZ_SEEDS");
  if (!dir || !*dir) return;
  SeedWriter seeds(dir);
  write_seeds(seeds);
  std::fprintf(stderr, "wrote %zu seeds to %s\n", seeds.count(), dir);
  std::exit(0);
}

// The files of `folder` under the shared data whose names end with `suffix`, sorted.
inline std::vector<std::filesystem::path> shared_files(const std::string &folder, std::string_view suffix) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto &entry : std::filesystem::directory_iterator(shared_dir() / folder, ec))
    if (entry.is_regular_file() && entry.path().string().ends_with(suffix)) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Splits llama.cpp's tokenizer test input (.inp) into its strings.
inline std::vector<std::string> split_vocab_tests(const std::string &text) {
  constexpr std::string_view sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at; (at = text.find(sep, start)) != std::string::npos; start = at + sep.size())
    out.push_back(text.substr(start, at - start));
  out.push_back(text.substr(start));
  return out;
}

// Runs f, for which a vramfit::Error is a fine outcome (the input was refused); anything else
// escaping it is a finding, left for libFuzzer to report.
template <class F>
void refused_or_done(F &&f) {
  try {
    f();
  } catch (const Error &) {
  }
}

}  // namespace vramfit::fuzz
