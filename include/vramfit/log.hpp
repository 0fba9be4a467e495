// Logging: the library never prints. It hands each message to a callback the application sets;
// with none set, messages are dropped.
#pragma once

#include "vramfit/export.hpp"

namespace vramfit {

enum class LogLevel : int { debug = 0, info = 1, warn = 2, error = 3 };

// Called from whichever thread logs; must be thread-safe if the application uses threads.
using LogCallback = void (*)(LogLevel level, const char *message, void *user_data);

// Sets (or, with nullptr, clears) the process-wide log callback. Thread-safe.
VRAMFIT_API void set_log_callback(LogCallback callback, void *user_data) noexcept;

}  // namespace vramfit
