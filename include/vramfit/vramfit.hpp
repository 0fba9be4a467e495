// The whole public C++ API of vramfit in one include.
#pragma once

#include "vramfit/chat.hpp"
#include "vramfit/context.hpp"
#include "vramfit/error.hpp"
#include "vramfit/export.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/log.hpp"
#include "vramfit/model.hpp"
#include "vramfit/offload.hpp"
#include "vramfit/quantize.hpp"
#include "vramfit/sampler.hpp"
#include "vramfit/selftest.hpp"
#include "vramfit/tokenizer.hpp"
#include "vramfit/types.hpp"
