// Locating ../shared (the reference data) from tests.
//
// VRAMFIT_TEST_DATA overrides the location; the default is ../shared beside the source tree.
// Missing data skips the check with a message on a user's machine, and fails under CI=true.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace vramfit::test {

inline std::filesystem::path shared_dir() {
  if (const char *env = std::getenv("VRAMFIT_TEST_DATA"); env && *env) return env;
  const char *src = std::getenv("VRAMFIT_SOURCE_DIR");
  std::filesystem::path root = (src && *src) ? std::filesystem::path(src) : std::filesystem::current_path();
  return root / ".." / "shared";
}

inline bool running_in_ci() {
  const char *ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Returns the path of a file in the shared data, or nullopt (after reporting) when absent.
// Use: `auto path = test_data("models/stories260K.gguf"); if (!path) return;`
inline std::optional<std::filesystem::path> test_data(const std::string &relative) {
  std::filesystem::path p = shared_dir() / relative;
  if (std::filesystem::exists(p)) return p;
  if (running_in_ci()) {
    FAIL_CHECK("test data missing under CI=true: " << p.string());
  } else {
    MESSAGE("skipped: test data not found: " << p.string() << " (set VRAMFIT_TEST_DATA)");
  }
  return std::nullopt;
}

}  // namespace vramfit::test
