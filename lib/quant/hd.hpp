// VRAMFIT_HD marks block arithmetic that both the CPU and CUDA kernels compile, so the same
// code is unit-tested on the CPU even where no GPU exists.
#pragma once

#if defined(__CUDACC__)
#define VRAMFIT_HD __host__ __device__ __forceinline__
#else
#define VRAMFIT_HD inline
#endif
