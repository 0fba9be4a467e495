// Every op of the CPU device and of the simulated device (over the CPU) against float64.
#include <doctest/doctest.h>

#include "model/device_check.hpp"
#include "model/device_cpu.hpp"
#include "model/device_sim.hpp"
#include "vramfit/error.hpp"

using namespace vramfit::model;

namespace {

void require_all_pass(const std::vector<OpCheck> &checks) {
  CHECK(checks.size() >= 30);
  for (const OpCheck &c : checks) {
    CAPTURE(c.op);
    CAPTURE(c.error);
    CHECK(c.passed());
  }
}

}  // namespace

TEST_CASE("cpu device ops agree with float64 references") {
  CpuDevice cpu(2);
  require_all_pass(check_device_ops(cpu));
  // The harness frees what it allocates; the CPU keeps only its attention workspace.
  const uint64_t kept = cpu.memory_stats().allocated_bytes;
  check_device_ops(cpu, 2);
  CHECK(cpu.memory_stats().allocated_bytes == kept);
}

TEST_CASE("sim device over the cpu: same results as the cpu, every byte through its arena") {
  CpuDevice cpu(2);
  SimDevice sim(cpu, 4 << 20);
  const std::vector<OpCheck> on_sim = check_device_ops(sim, 7);
  const std::vector<OpCheck> on_cpu = check_device_ops(cpu, 7);
  require_all_pass(on_sim);
  REQUIRE(on_sim.size() == on_cpu.size());
  for (size_t i = 0; i < on_sim.size(); ++i) {
    CAPTURE(on_sim[i].op);
    CHECK(on_sim[i].error == on_cpu[i].error);  // same kernels, same inputs: bit-identical
  }
  const DeviceMemoryStats stats = sim.memory_stats();
  CHECK(stats.allocated_bytes == 0);
  CHECK(stats.peak_bytes > 0);
  CHECK(stats.peak_bytes <= stats.budget_bytes);
  CHECK(stats.bytes_uploaded > 0);
  CHECK(stats.bytes_downloaded > 0);
}

TEST_CASE("sim device: a budget too small for the checks fails with budget_exceeded, and recovers") {
  CpuDevice cpu(1);
  SimDevice sim(cpu, 64 << 10);
  try {
    check_device_ops(sim);
    FAIL("expected budget_exceeded");
  } catch (const vramfit::Error &e) {
    CHECK(e.code() == vramfit::ErrorCode::budget_exceeded);
  }
  CHECK(sim.memory_stats().allocated_bytes == 0);  // unwinding returned every byte
}
