// Internal helper to throw a formatted vramfit::Error in one line.
#pragma once

#include <fmt/format.h>

#include "vramfit/error.hpp"

namespace vramfit::detail {

template <class... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> f, Args &&...args) {
  throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace vramfit::detail
