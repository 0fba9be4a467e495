// vramfit::Error — the one exception type the library throws.
//
// Every failure carries a code (what kind of problem) and a message that names the problem and
// where it is (file offset, tensor name, flag), so a user can act on it. The library never aborts,
// exits or prints; the C ABI converts an Error to a status code plus a thread-local message.
#pragma once

#include <stdexcept>
#include <string>

#include "vramfit/export.hpp"

namespace vramfit {

enum class ErrorCode : int {
  invalid_argument = 1,  // a caller passed something meaningless (null, negative size, bad flag)
  io = 2,                // the OS refused: open, read, mmap, write, rename
  format = 3,            // the file is not valid GGUF (or a truncated / corrupt one)
  unsupported = 4,       // valid, but something vramfit does not implement (GGUF v1, a tensor type)
  out_of_memory = 5,     // host or device allocation failed
  budget_exceeded = 6,   // an allocation or plan would cross the caller's VRAM budget
  context_full = 7,      // the KV cache has no room for the batch
  device = 8,            // a CUDA / device runtime error
  internal = 9,          // a bug in vramfit
  cancelled = 11,        // the caller's callback asked to stop (ModelParams.progress returned false)
};

// Short stable name of a code ("format", "budget_exceeded", ...).
VRAMFIT_API const char *to_string(ErrorCode code) noexcept;

class VRAMFIT_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string &message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace vramfit
