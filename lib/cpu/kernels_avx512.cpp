// The avx512 kernel table (compiled with this ISA's -m flags, see CMakeLists.txt).
#include "cpu/kernel_select.hpp"
#include "cpu/kernels_simd.hpp"

namespace vramfit::cpu {

template <>
const Kernels *KernelSelector::operator()(xsimd::avx512bw) const noexcept {
  return &simd_kernels<xsimd::avx512bw>(Isa::avx512);
}

}  // namespace vramfit::cpu
