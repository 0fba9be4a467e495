// Turning CUDA and cuBLAS status codes into vramfit::Error (internal; includes CUDA headers).
//
// The throw itself lives in runtime.cpp so the .cu files need no fmt or std::string machinery.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace vramfit::cuda {

// Throws Error(device) (Error(out_of_memory) for cudaErrorMemoryAllocation) naming `op` and the
// CUDA error string.
[[noreturn]] void throw_cuda_error(cudaError_t error, const char *op);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char *op);

inline void check(cudaError_t error, const char *op) {
  if (error != cudaSuccess) throw_cuda_error(error, op);
}
inline void check(cublasStatus_t status, const char *op) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, op);
}
// After a kernel launch: reports a bad launch configuration at once (execution errors surface at
// the next synchronizing call, also as Error(device)).
inline void check_launch(const char *op) { check(cudaGetLastError(), op); }

}  // namespace vramfit::cuda
