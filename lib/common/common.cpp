#include <atomic>
#include <mutex>

#include "common/log.hpp"
#include "common/utf8.hpp"
#include "vramfit/error.hpp"

namespace vramfit {

const char *to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::io: return "io";
    case ErrorCode::format: return "format";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::out_of_memory: return "out_of_memory";
    case ErrorCode::budget_exceeded: return "budget_exceeded";
    case ErrorCode::context_full: return "context_full";
    case ErrorCode::device: return "device";
    case ErrorCode::internal: return "internal";
    case ErrorCode::cancelled: return "cancelled";
  }
  return "unknown";
}

namespace {
std::mutex g_log_mutex;
LogCallback g_log_callback = nullptr;
void *g_log_user_data = nullptr;
std::atomic<bool> g_log_set{false};
}  // namespace

void set_log_callback(LogCallback callback, void *user_data) noexcept {
  std::lock_guard lock(g_log_mutex);
  g_log_callback = callback;
  g_log_user_data = user_data;
  g_log_set.store(callback != nullptr, std::memory_order_release);
}

namespace detail {

bool log_enabled() noexcept { return g_log_set.load(std::memory_order_acquire); }

void log_message(LogLevel level, const std::string &message) noexcept {
  std::lock_guard lock(g_log_mutex);
  // Messages quote names from files, which need not be UTF-8; the callback gets valid text.
  if (g_log_callback) g_log_callback(level, valid_utf8(message).c_str(), g_log_user_data);
}

}  // namespace detail
}  // namespace vramfit
