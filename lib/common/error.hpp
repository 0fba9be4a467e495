// Internal helper to throw a formatted vramfit::Error in one line. The message is made valid
// UTF-8 (U+FFFD for stray bytes): it quotes keys, tensor names and token texts from files, which
// are not checked, and it reaches callers who decode it (C ABI, Python, JSON errors).
#pragma once

#include <fmt/format.h>

#include "common/utf8.hpp"
#include "vramfit/error.hpp"

namespace vramfit::detail {

template <class... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> f, Args &&...args) {
  throw Error(code, valid_utf8(fmt::format(f, std::forward<Args>(args)...)));
}

}  // namespace vramfit::detail
