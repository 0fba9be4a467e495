// Symbol visibility for the public C++ API. The library is built with hidden visibility;
// only what is marked VRAMFIT_API (and the C ABI) is exported from libvramfit.so.
#pragma once

#if defined(_WIN32)
#define VRAMFIT_API
#else
#define VRAMFIT_API __attribute__((visibility("default")))
#endif
