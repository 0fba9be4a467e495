// Plan's human table and JSON.
#include <fmt/format.h>

#include "common/error.hpp"
#include "common/json_text.hpp"
#include "offload/layout.hpp"
#include "vramfit/offload.hpp"

namespace vramfit {

const char *to_string(Location location) noexcept { return location == Location::device ? "device" : "host"; }

const char *to_string(OffloadStrategy strategy) noexcept {
  switch (strategy) {
    case OffloadStrategy::fastest:
      return "fastest";
    case OffloadStrategy::layers:
      return "layers";
    case OffloadStrategy::manual:
      return "manual";
  }
  return "unknown";
}

const char *to_string(KvType type) noexcept {
  switch (type) {
    case KvType::f16:
      return "f16";
    case KvType::f32:
      return "f32";
    case KvType::q8_0:
      return "q8_0";
  }
  return "unknown";
}

Location Plan::location_of(std::string_view tensor_name) const {
  for (const PlannedTensor &t : tensors)
    if (t.name == tensor_name) return t.location;
  detail::fail(ErrorCode::invalid_argument, "the plan has no tensor '{}'", tensor_name);
}

namespace {

// The user's words for the two sides (as in -ot REGEX=gpu|cpu).
const char *side(Location l) { return l == Location::device ? "gpu" : "cpu"; }

std::string json_breakdown(const MemoryBreakdown &m) {
  return fmt::format(R"({{"weights": {}, "kv": {}, "scratch": {}, "staging": {}, "overhead": {}, "total": {}}})",
                     m.weights, m.kv, m.scratch, m.staging, m.overhead, m.total());
}

double gib(uint64_t bytes) { return bytes / 1073741824.0; }

// Where a machine fact came from: measured on this machine, given by the caller, or assumed
// (MachineProfile's defaults: a 12 GiB RTX 3060-class card on PCIe 4.0 x16, a desktop's RAM).
const char *fact_source(bool measured, bool given) { return measured ? "measured" : given ? "given" : "assumed"; }

// Where a layer's attention, feed-forward (or router) and expert group live: "gpu", "cpu",
// "mixed" (never in a plan the planner made) or "-" when the layer has no such tensors.
struct LayerSides {
  static constexpr offload::Role kRoles[3] = {offload::Role::attention, offload::Role::ffn, offload::Role::experts};
  bool device[3] = {false, false, false};
  bool host[3] = {false, false, false};

  std::string of(size_t role) const {
    if (device[role] && host[role]) return "mixed";
    if (device[role]) return "gpu";
    return host[role] ? "cpu" : "-";
  }
};

std::vector<LayerSides> layer_sides(const Plan &plan) {
  std::vector<LayerSides> sides(plan.n_layer);
  for (const PlannedTensor &t : plan.tensors) {
    if (t.layer < 0 || static_cast<uint32_t>(t.layer) >= plan.n_layer) continue;
    const offload::Role role = offload::classify(t.name).role;
    for (size_t r = 0; r < 3; ++r)
      if (role == LayerSides::kRoles[r])
        (t.location == Location::device ? sides[static_cast<size_t>(t.layer)].device
                                        : sides[static_cast<size_t>(t.layer)].host)[r] = true;
  }
  return sides;
}

// {"Q4_K": {"matvec_bytes_per_s": ..., "matmul_flops": ...}, ...}: {} when the host is a roofline.
std::string json_host_kernels(const MachineProfile &m) {
  std::string out = "{";
  for (const auto &[type, rate] : m.host_kernels)
    out += fmt::format("{}\"{}\": {{\"matvec_bytes_per_s\": {:.6g}, \"matmul_flops\": {:.6g}}}",
                       out.size() > 1 ? ", " : "", type_name(type), rate.matvec_bytes_per_s, rate.matmul_flops);
  return out + "}";
}

std::string json_side(const std::string &side) { return side == "-" ? "null" : "\"" + side + "\""; }

}  // namespace

std::string Plan::to_json() const {
  std::string out = "{\n";
  out +=
      fmt::format("  \"strategy\": {}, \"chosen_by\": {},\n", detail::json_quote(to_string(strategy)), detail::json_quote(chosen_by));
  out += fmt::format("  \"budget_bytes\": {}, \"device_total_bytes\": {}, \"host_total_bytes\": {},\n", budget_bytes,
                     device_total_bytes(), host_total_bytes());
  out += fmt::format("  \"n_ctx\": {}, \"n_batch\": {}, \"kv_type\": {}, \"n_contexts\": {}, \"n_layer\": {}, "
                     "\"n_device_layers\": {},\n",
                     n_ctx, n_batch, detail::json_quote(to_string(kv_type)), n_contexts, n_layer, n_device_layers);
  out += fmt::format("  \"predicted_pp_tok_s\": {:.6g}, \"predicted_tg_tok_s\": {:.6g}, \"host_memory_fits\": {},\n",
                     predicted_pp_tok_s, predicted_tg_tok_s, host_memory_fits);
  out += fmt::format("  \"by_category\": {{\"device\": {}, \"host\": {}}},\n", json_breakdown(device),
                     json_breakdown(host));
  out += fmt::format("  \"bytes_read_per_token\": {{\"device\": {}, \"host\": {}}},\n", bytes_read_per_token.device,
                     bytes_read_per_token.host);
  out += fmt::format(
      "  \"streaming\": {{\"enabled\": {}, \"min_batch\": {}, \"slot_bytes\": {}, \"kv_bytes\": {}, "
      "\"bytes_per_batch\": {}, \"predicted_pp_tok_s\": {:.3f}, \"unstreamed_pp_tok_s\": {:.3f}}},\n",
      streaming.enabled, streaming.min_batch, streaming.slot_bytes, streaming.kv_bytes, streaming.bytes_per_batch,
      streaming.predicted_pp_tok_s, streaming.unstreamed_pp_tok_s);
  out += fmt::format("  \"expert_groups\": {{\"device\": {}, \"total\": {}}},\n", n_device_expert_groups,
                     n_expert_groups);
  const MachineProfile &m = machine;
  out += fmt::format(
      "  \"machine\": {{\"host_read_bandwidth\": {:.6g}, \"host_read_bandwidth_measured\": {}, "
      "\"device_read_bandwidth\": {:.6g}, \"host_to_device_bandwidth\": {:.6g}, \"transfer_latency_s\": {:.6g}, "
      "\"host_flops\": {:.6g}, \"device_flops\": {:.6g}, \"device_memory_bytes\": {}, "
      "\"device_fixed_overhead_bytes\": {}, \"device_fixed_overhead_measured\": {}, \"host_memory_bytes\": {}, "
      "\"host_available_bytes\": {}, \"host_attention_flops\": {:.6g}, \"host_kernels\": {}}},\n",
      m.host_read_bandwidth, m.measured.host_read_bandwidth, m.device_read_bandwidth, m.host_to_device_bandwidth,
      m.transfer_latency_s, m.host_flops, m.device_flops, m.device_memory_bytes, m.device_fixed_overhead_bytes,
      m.measured.device_fixed_overhead, m.host_memory_bytes, m.host_available_bytes,
      m.host_attention_flops, json_host_kernels(m));
  const auto &ms = m.measured, &gv = m.given;
  out += fmt::format(
      "  \"machine_sources\": {{\"device_memory\": \"{}\", \"device_fixed_overhead\": \"{}\", "
      "\"device_read_bandwidth\": \"{}\", \"host_read_bandwidth\": \"{}\", \"host_to_device_bandwidth\": \"{}\", "
      "\"host_flops\": \"{}\", \"device_flops\": \"{}\", \"host_memory\": \"{}\", \"host_kernels\": \"{}\"}},\n",
      fact_source(ms.device_memory, gv.device_memory), fact_source(ms.device_fixed_overhead, gv.device_fixed_overhead),
      fact_source(ms.device_read_bandwidth, gv.device_read_bandwidth),
      fact_source(ms.host_read_bandwidth, gv.host_read_bandwidth),
      fact_source(ms.host_to_device_bandwidth, gv.host_to_device_bandwidth), fact_source(ms.host_flops, gv.host_flops),
      fact_source(ms.device_flops, gv.device_flops), fact_source(ms.host_memory, gv.host_memory),
      fact_source(ms.host_kernels, gv.host_kernels));
  out += "  \"notes\": [";
  for (size_t i = 0; i < notes.size(); ++i) out += (i ? ", " : "") + detail::json_quote(notes[i]);
  out += "],\n  \"layers\": [\n";
  const std::vector<LayerSides> sides = layer_sides(*this);
  for (size_t l = 0; l < sides.size(); ++l)
    out += fmt::format("    {{\"layer\": {}, \"attention\": {}, \"ffn\": {}, \"experts\": {}, \"kv\": \"{}\"}}{}\n", l,
                       json_side(sides[l].of(0)), json_side(sides[l].of(1)), json_side(sides[l].of(2)),
                       side(kv[l].location), l + 1 < sides.size() ? "," : "");
  out += "  ],\n  \"kv\": [\n";
  for (size_t i = 0; i < kv.size(); ++i)
    out += fmt::format("    {{\"layer\": {}, \"device\": \"{}\", \"bytes\": {}}}{}\n", kv[i].layer,
                       side(kv[i].location), kv[i].k_bytes + kv[i].v_bytes, i + 1 < kv.size() ? "," : "");
  out += "  ],\n  \"tensors\": [\n";
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PlannedTensor &t = tensors[i];
    out += fmt::format("    {{\"name\": {}, \"device\": \"{}\", \"bytes\": {}, \"type\": \"{}\", \"layer\": {}}}{}\n",
                       detail::json_quote(t.name), side(t.location), t.bytes, type_name(t.type), t.layer,
                       i + 1 < tensors.size() ? "," : "");
  }
  out += "  ]\n}\n";
  return out;
}

namespace {

std::string machine_table(const MachineProfile &m) {
  const auto &ms = m.measured, &gv = m.given;
  std::string out = "\nmachine facts the plan used:\n";
  auto line = [&](const std::string &what, bool measured, bool given) {
    out += fmt::format("  {:<47} {}\n", what, fact_source(measured, given));
  };
  line(fmt::format("gpu memory {:.2f} GiB", gib(m.device_free_bytes ? m.device_free_bytes : m.device_memory_bytes)),
       ms.device_memory, gv.device_memory);
  line(fmt::format("gpu fixed overhead {:.0f} MiB", m.device_fixed_overhead_bytes / 1048576.0),
       ms.device_fixed_overhead, gv.device_fixed_overhead);
  line(fmt::format("gpu read bandwidth {:.0f} GB/s", m.device_read_bandwidth / 1e9), ms.device_read_bandwidth,
       gv.device_read_bandwidth);
  line(fmt::format("host read bandwidth {:.1f} GB/s", m.host_read_bandwidth / 1e9), ms.host_read_bandwidth,
       gv.host_read_bandwidth);
  line(fmt::format("host<->gpu bandwidth {:.1f} GB/s", m.host_to_device_bandwidth / 1e9),
       ms.host_to_device_bandwidth, gv.host_to_device_bandwidth);
  line(fmt::format("compute: gpu {:.1f} Tflop/s, host {:.2f} Tflop/s", m.device_flops / 1e12, m.host_flops / 1e12),
       ms.device_flops && ms.host_flops, gv.device_flops || gv.host_flops);
  if (m.host_kernels.empty())
    line("host kernels: no per-type rates (the roofline)", false, false);
  if (m.host_attention_flops > 0)
    line(fmt::format("host attention {:.0f} Gflop/s", m.host_attention_flops / 1e9), ms.host_kernels,
         gv.host_kernels);
  for (const auto &[type, rate] : m.host_kernels)
    line(fmt::format("host {} kernels: mat-vec {:.1f} GB/s, matmul {:.0f} Gflop/s", type_name(type),
                     rate.matvec_bytes_per_s / 1e9, rate.matmul_flops / 1e9),
         ms.host_kernels, gv.host_kernels);
  if (m.host_available_bytes == 0)
    line("host memory unknown", false, false);
  else
    line(fmt::format("host memory {:.2f} GiB available of {:.2f} GiB", gib(m.host_available_bytes),
                     gib(m.host_memory_bytes)),
         ms.host_memory, gv.host_memory);
  return out;
}

}  // namespace

std::string Plan::to_table() const {
  std::string out;
  out += fmt::format("strategy {} -> {}\n", to_string(strategy), chosen_by);
  out += fmt::format("n_ctx {}, n_batch {}, KV cache {}{}\n", n_ctx, n_batch, to_string(kv_type),
                     n_contexts > 1 ? fmt::format(", {} contexts (each its own KV cache and scratch)", n_contexts) : "");
  out += fmt::format("budget {:.2f} GiB ({} bytes)\n\n", gib(budget_bytes), budget_bytes);
  out += fmt::format("{:<10} {:>12} {:>12}\n", "", "gpu GiB", "cpu GiB");
  auto row = [&](const char *name, uint64_t d, uint64_t h) {
    out += fmt::format("{:<10} {:>12.3f} {:>12.3f}\n", name, gib(d), gib(h));
  };
  row("weights", device.weights, host.weights);
  row("kv cache", device.kv, host.kv);
  row("scratch", device.scratch, host.scratch);
  row("staging", device.staging, host.staging);
  row("overhead", device.overhead, host.overhead);
  row("total", device.total(), host.total());
  out += fmt::format("\nlayers wholly on the gpu: {} of {}\n", n_device_layers, n_layer);
  if (n_expert_groups > 0)
    out += fmt::format("expert groups on the gpu: {} of {}\n", n_device_expert_groups, n_expert_groups);
  out += fmt::format("bytes read per generated token: gpu {:.3f} GiB, cpu {:.3f} GiB\n", gib(bytes_read_per_token.device),
                     gib(bytes_read_per_token.host));
  out +=
      fmt::format("predicted: prompt {:.1f} tok/s, generation {:.2f} tok/s\n", predicted_pp_tok_s, predicted_tg_tok_s);
  if (streaming.enabled)
    out += fmt::format("prompt streaming: batches of {}+ tokens run on the gpu, {:.2f} GiB of host weights copied per "
                       "batch through 2 x {:.1f} MiB slots ({:.1f} tok/s without)\n",
                       streaming.min_batch, gib(streaming.bytes_per_batch), streaming.slot_bytes / 1048576.0,
                       streaming.unstreamed_pp_tok_s);
  if (machine.host_available_bytes == 0)
    out += "host memory: unknown, not checked\n";
  else
    out +=
        fmt::format("host memory: {} ({:.2f} GiB needed, {:.2f} GiB available)\n",
                    host_memory_fits ? "fits" : "DOES NOT FIT", gib(host.total()), gib(machine.host_available_bytes));
  for (const std::string &note : notes) out += "note: " + note + "\n";
  out += machine_table(machine);

  out += fmt::format("\n{:<12} {:<10} {:<10} {:<10} {:<10}\n", "layers", "attention", "ffn", "experts", "kv");
  const std::vector<LayerSides> sides = layer_sides(*this);
  auto describe = [&](uint32_t l) {
    return fmt::format("{:<10} {:<10} {:<10} {:<10}", sides[l].of(0), sides[l].of(1), sides[l].of(2),
                       side(kv[l].location));
  };
  for (uint32_t first = 0; first < n_layer;) {  // runs of identical layers on one line
    uint32_t last = first;
    const std::string what = describe(first);
    while (last + 1 < n_layer && describe(last + 1) == what) ++last;
    out += fmt::format("{:<12} {}\n",
                       first == last ? fmt::format("blk.{}", first) : fmt::format("blk.{}-{}", first, last), what);
    first = last + 1;
  }
  for (const PlannedTensor &t : tensors)
    if (t.layer < 0) out += fmt::format("{:<24} {} ({:.3f} GiB)\n", t.name, side(t.location), gib(t.bytes));
  return out;
}

}  // namespace vramfit
