// The xsimd::dispatch functor that picks a kernel table; each kernels_<isa>.cpp defines its
// specialisation (xsimd's "dispatching" pattern: one translation unit per architecture).
#pragma once

#include <xsimd/xsimd.hpp>

#include "cpu/kernels.hpp"

namespace vramfit::cpu {

struct KernelSelector {
  template <class Arch>
  const Kernels *operator()(Arch) const noexcept;
};

template <>
const Kernels *KernelSelector::operator()(xsimd::sse4_1) const noexcept;
template <>
const Kernels *KernelSelector::operator()(xsimd::fma3<xsimd::avx2>) const noexcept;
template <>
const Kernels *KernelSelector::operator()(xsimd::avx512bw) const noexcept;

// Highest first, as xsimd::dispatch walks the list.
using KernelArchs = xsimd::arch_list<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse4_1>;

}  // namespace vramfit::cpu
