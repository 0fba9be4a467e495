// Checks any Device's ops against float64 references on small random inputs.
//
// One harness for every backend: `vramfit selftest` runs it on the CPU (and the simulated device)
// everywhere and on the GPU when one exists, and the device tests run it too. Inputs are uploaded
// to memory the device allocates, so the check also exercises allocate/upload/download, and works
// for devices whose memory the host cannot read (CUDA).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/device.hpp"

namespace vramfit::model {

struct OpCheck {
  std::string op;      // "matmul Q4_K n_tokens=4"
  double error = 0;    // relative RMS error vs float64: |y - ref|_2 / |ref|_2
  double tolerance = 0;
  bool passed() const noexcept { return error <= tolerance; }  // false for NaN
};

// Runs every op of `device` (matmul for each weight type and for 1, 4 and 40 tokens, get_rows,
// rms_norm, rope with and without freq_factors, kv_store + causal GQA attention for F32/F16/Q8_0
// caches, swiglu, add) and returns one result per case. Throws only when the device does.
std::vector<OpCheck> check_device_ops(Device &device, uint32_t seed = 1);

}  // namespace vramfit::model
