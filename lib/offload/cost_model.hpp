// The cost model: predicted seconds per token of a placement.
//
// Each stage of the forward pass costs, on the memory it runs from, the larger of
// (bytes it reads / that memory's read bandwidth) and (flops / that processor's rate): a
// roofline. Generation reads every weight once per token; a prompt batch reads it once per
// n_batch tokens, so prompt processing is mostly compute bound. Moving a stage's input between
// host and device costs one transfer latency plus bytes / host_to_device_bandwidth.
// The KV cache is read half full (the average over a context). token_embd costs one row per
// token, so keeping it on the host is nearly free.
#pragma once

#include <span>

#include "offload/layout.hpp"

namespace vramfit::offload {

struct Times {
  double tg = 0;  // seconds per generated token
  double pp = 0;  // seconds per prompt token
  // What `fastest` minimizes: a request with as many prompt tokens as generated ones.
  double objective() const noexcept { return tg + pp; }
};

// Classifies the tensors, orders the stages with their costs, and forms the groups (the KV cache
// of a layer joins its attention group when it follows its layer).
Layout build_layout(const ModelShape &model, const PlanRequest &request, uint32_t n_ctx);

// Bytes of tensor t one generated token reads: an expert tensor's k/N, token_embd's one row
// (unless it is the output projection), any other tensor in full.
double tensor_bytes_per_token(const ModelShape &model, const Layout &layout, size_t t);
// Bytes of one layer's KV cache a token reads: K and V of n_ctx / 2 positions (half full, the
// average over a context).
double kv_bytes_per_token(const ModelShape &model, KvType type, uint32_t n_ctx, uint32_t layer);

Location stage_location(const Placement &placement, const Stage &stage) noexcept;

Times total_time(const Layout &layout, const Placement &placement);

// Seconds one prompt batch of n tokens takes: each stage where the placement puts it, or, when
// `streamed`, every host-placed streamable stage (all but the embedding lookup and the output
// head) on the device, costing the larger of its weights' copy over the link and its device work
// (copies overlap compute: two staging slots).
double prompt_seconds(const Layout &layout, const Placement &placement, const MachineProfile &machine, double n,
                      bool streamed);
// The smallest batch (<= n_batch) for which streaming is faster; 0 when it never is.
uint32_t stream_min_batch(const Layout &layout, const Placement &placement, const MachineProfile &machine,
                          uint32_t n_batch);
// Time of the given stages plus every crossing into or out of them: the part of total_time
// that changes when only those stages move.
Times local_time(const Layout &layout, const Placement &placement, std::span<const int32_t> stage_ids);

}  // namespace vramfit::offload
