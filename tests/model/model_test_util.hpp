// Helpers shared by the model tests.
#pragma once

#include "vramfit/model.hpp"

namespace vramfit::test {

// The CPU reference path, explicitly: "auto" would pick a GPU where there is one (the GPU path is
// tests/devices/test_cuda_device.cpp).
inline ModelParams cpu_only() {
  ModelParams p;
  p.device = "cpu";
  return p;
}

}  // namespace vramfit::test
