#include "common/fault.hpp"

#include <atomic>

namespace vramfit::detail {
namespace {

std::atomic<bool> g_armed{false};
std::atomic<int> g_kind{0};
std::atomic<uint64_t> g_target{0};
std::atomic<bool> g_fired{false};
std::atomic<uint64_t> g_seen[kFaultKinds];

}  // namespace

const char *to_string(Fault kind) noexcept {
  switch (kind) {
    case Fault::host_alloc: return "host allocation";
    case Fault::device_alloc: return "device allocation";
    case Fault::file_open: return "file open";
    case Fault::file_map: return "memory map";
    case Fault::file_write: return "file write";
  }
  return "?";
}

bool inject_fault(Fault kind) noexcept {
  if (!g_armed.load(std::memory_order_relaxed)) return false;
  const uint64_t n = g_seen[static_cast<int>(kind)].fetch_add(1) + 1;
  if (static_cast<int>(kind) != g_kind.load() || n != g_target.load()) return false;
  g_fired.store(true);
  return true;
}

void arm_faults(Fault kind, uint64_t n) noexcept {
  for (auto &seen : g_seen) seen.store(0);
  g_kind.store(static_cast<int>(kind));
  g_target.store(n);
  g_fired.store(false);
  g_armed.store(true);
}

void disarm_faults() noexcept { g_armed.store(false); }

uint64_t faults_seen(Fault kind) noexcept { return g_seen[static_cast<int>(kind)].load(); }

bool fault_fired() noexcept { return g_fired.load(); }

}  // namespace vramfit::detail
