#include "model/device_spec.hpp"

#include <charconv>
#include <string_view>

#include "common/error.hpp"
#include "vramfit/offload.hpp"
#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
#include "cuda/runtime.hpp"
#endif

namespace vramfit::model {

using detail::fail;

bool built_with_cuda() noexcept {
#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

DeviceSpec parse_device(const std::string &device) {
  DeviceSpec spec;
  auto bad = [&]() -> DeviceSpec {
    fail(ErrorCode::invalid_argument, "device '{}' is not one of auto, cpu, cuda[:N], sim[:CAPACITY]", device);
  };
  if (device == "cpu") return spec;
  if (device == "auto") {
    if (cuda_device_count() > 0) spec.kind = DeviceKind::cuda;
    return spec;
  }
  if (device == "sim" || device.starts_with("sim:")) {
    spec.kind = DeviceKind::sim;
    if (device.size() > 4) {
      auto capacity = parse_size(std::string_view(device).substr(4));
      if (!capacity || *capacity == 0) return bad();
      spec.capacity = *capacity;
    }
    return spec;
  }
  if (device == "cuda" || device.starts_with("cuda:")) {
    spec.kind = DeviceKind::cuda;
    if (device.size() > 5) {
      const std::string_view n = std::string_view(device).substr(5);
      auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), spec.index);
      if (ec != std::errc() || end != n.data() + n.size() || spec.index < 0) return bad();
    }
    if (!built_with_cuda())
      fail(ErrorCode::unsupported, "device '{}': this vramfit was built without CUDA (use cpu or sim:CAPACITY)",
           device);
    const int count = cuda_device_count();
    if (spec.index >= count)
      fail(ErrorCode::device, "device '{}': no such CUDA device ({} found: no driver, no GPU or not visible)",
           device, count);
    return spec;
  }
  return bad();
}

}  // namespace vramfit::model
