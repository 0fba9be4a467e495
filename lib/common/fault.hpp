// Fault injection for tests: the Nth host allocation, device (arena) reservation, file open,
// memory map or file write fails as the real one would, so a test can walk every error path of a
// load, a prompt, a generation, a plan or a quantize (tests/model/test_faults.cpp).
//
// Compiled into every build and inert until a test arms it: each operation costs one relaxed
// atomic load. Counters are process-wide and atomic (a failure may hit any thread).
#pragma once

#include <cstdint>

namespace vramfit::detail {

enum class Fault : int { host_alloc, device_alloc, file_open, file_map, file_write };
inline constexpr int kFaultKinds = 5;
const char *to_string(Fault kind) noexcept;

// True when this operation of `kind` must fail (called at each injection point).
bool inject_fault(Fault kind) noexcept;

// Test control. arm(kind, n): count operations of every kind from now on, and fail the nth
// (1-based) of `kind`; n = 0 fails none (a counting run). seen(kind): operations counted since
// arm(). disarm(): back to inert.
void arm_faults(Fault kind, uint64_t n) noexcept;
void disarm_faults() noexcept;
uint64_t faults_seen(Fault kind) noexcept;
bool fault_fired() noexcept;  // whether the armed failure has happened since arm()

}  // namespace vramfit::detail
