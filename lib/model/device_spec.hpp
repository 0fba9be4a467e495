// ModelParams.device as users write it ("auto", "cpu", "cuda[:N]", "sim[:CAPACITY]"), parsed.
// On its own so the fuzzers (tests/fuzz) can build it without the rest of the model component.
#pragma once

#include <cstdint>
#include <string>

#include "model/device.hpp"

namespace vramfit::model {

struct DeviceSpec {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;              // cuda:N
  uint64_t capacity = 0;      // sim:CAPACITY (0: not given)
};
// "auto" resolves to cuda when the build has CUDA and a device exists, else cpu.
// Error(invalid_argument) for a malformed name, Error(unsupported) for cuda in a CPU-only build,
// Error(device) for a CUDA device index that does not exist.
DeviceSpec parse_device(const std::string &device);

bool built_with_cuda() noexcept;
int cuda_device_count();  // 0 without CUDA

}  // namespace vramfit::model
