// Internal logging helpers: format with fmt, deliver through the application's callback.
#pragma once

#include <fmt/format.h>

#include <string>

#include "vramfit/log.hpp"

namespace vramfit::detail {

bool log_enabled() noexcept;
void log_message(LogLevel level, const std::string &message) noexcept;

template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args &&...args) {
  if (log_enabled()) log_message(level, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_info(fmt::format_string<Args...> f, Args &&...args) {
  log(LogLevel::info, f, std::forward<Args>(args)...);
}
template <class... Args>
void log_warn(fmt::format_string<Args...> f, Args &&...args) {
  log(LogLevel::warn, f, std::forward<Args>(args)...);
}
template <class... Args>
void log_debug(fmt::format_string<Args...> f, Args &&...args) {
  log(LogLevel::debug, f, std::forward<Args>(args)...);
}

}  // namespace vramfit::detail
