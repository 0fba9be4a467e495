#include "cpu/kernels.hpp"

#include <atomic>

#include "common/error.hpp"
#include "cpu/kernel_select.hpp"

namespace vramfit::cpu {
namespace {

bool cpu_has(Isa isa) noexcept {
  const auto cpu = xsimd::available_architectures();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::sse4_1: return cpu.sse4_1;
    case Isa::avx2: return cpu.fma3_avx2;
    case Isa::avx512:  // xsimd 8.1 reports neither VL nor VNNI, which kernels_avx512.cpp is built with
      return cpu.avx512bw && cpu.avx512dq && cpu.avx512cd && cpu.avx512f && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

const Kernels &best_kernels() noexcept {
  if (!cpu_has(Isa::sse4_1)) return scalar_kernels();
  const Kernels *best = xsimd::dispatch<KernelArchs>(KernelSelector{})();
  if (best->isa == Isa::avx512 && !cpu_has(Isa::avx512)) return kernels_for(Isa::avx2);
  return *best;
}

std::atomic<const Kernels *> g_override{nullptr};

}  // namespace

std::string_view isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::sse4_1: return "sse4.1";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

const Kernels &active_kernels() noexcept {
  if (const Kernels *forced = g_override.load(std::memory_order_acquire)) return *forced;
  static const Kernels &best = best_kernels();
  return best;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::sse4_1, Isa::avx2, Isa::avx512})
    if (cpu_has(isa)) isas.push_back(isa);
  return isas;
}

const Kernels &kernels_for(Isa isa) {
  if (!cpu_has(isa)) detail::fail(ErrorCode::unsupported, "this CPU cannot run the {} kernels", isa_name(isa));
  switch (isa) {
    case Isa::sse4_1: return *KernelSelector{}(xsimd::sse4_1{});
    case Isa::avx2: return *KernelSelector{}(xsimd::fma3<xsimd::avx2>{});
    case Isa::avx512: return *KernelSelector{}(xsimd::avx512bw{});
    case Isa::scalar: break;
  }
  return scalar_kernels();
}

void set_isa_override(std::optional<Isa> isa) {
  g_override.store(isa ? &kernels_for(*isa) : nullptr, std::memory_order_release);
}

}  // namespace vramfit::cpu
