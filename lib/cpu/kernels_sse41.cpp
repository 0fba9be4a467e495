// The sse4_1 kernel table (compiled with this ISA's -m flags, see CMakeLists.txt).
#include "cpu/kernel_select.hpp"
#include "cpu/kernels_simd.hpp"

namespace vramfit::cpu {

template <>
const Kernels *KernelSelector::operator()(xsimd::sse4_1) const noexcept {
  return &simd_kernels<xsimd::sse4_1>(Isa::sse4_1);
}

}  // namespace vramfit::cpu
