// The avx2 kernel table (compiled with this ISA's -m flags, see CMakeLists.txt).
#include "cpu/kernel_select.hpp"
#include "cpu/kernels_simd.hpp"

namespace vramfit::cpu {

template <>
const Kernels *KernelSelector::operator()(xsimd::fma3<xsimd::avx2>) const noexcept {
  return &simd_kernels<xsimd::fma3<xsimd::avx2>>(Isa::avx2);
}

}  // namespace vramfit::cpu
