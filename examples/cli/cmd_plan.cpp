// `vramfit plan -m MODEL --vram-budget 11.5GiB ...`: a GPU/CPU split under a byte budget, from
// the model's header alone (no GPU needed).
#include <cctype>
#include <chrono>
#include <string>

#include "cli.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace vramfit::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: vramfit plan -m MODEL [--vram-budget SIZE] [-c N] [-b N] [--kv-type f16|f32|q8_0]\n"
    "                    [--strategy fastest|layers|manual] [-ngl N] [-ot REGEX=gpu|cpu ...]\n"
    "                    [--cpu-moe | --n-cpu-moe N] [--json]\n"
    "  Plans which tensors and KV-cache layers go to the GPU so that everything vramfit allocates\n"
    "  there stays within the budget, and predicts prompt and generation speed. Reads only the\n"
    "  header, so header-only files work.\n"
    "  -m, --model PATH         GGUF file\n"
    "  --vram-budget SIZE       hard cap on GPU bytes: 11.5GiB, 12GB, 800MiB, bytes\n"
    "                           (default: device memory minus --reserve)\n"
    "  --reserve SIZE           kept free when no budget is given (default 512MiB)\n"
    "  -c, --ctx-size N         context the KV cache holds (default 4096)\n"
    "  --min-ctx N              allow shrinking the context down to N to fit the budget\n"
    "  -b, --batch-size N       tokens per batch (default 512)\n"
    "  --kv-type T              KV cache type: f16 (default), f32, q8_0\n"
    "  --kv-placement P         follow (default: with its layer), host, device\n"
    "  --strategy S             fastest (default), layers (whole layers, like -ngl), manual\n"
    "  -ngl, --n-gpu-layers N   whole layers on the GPU, front to back (implies --strategy layers;\n"
    "                           N > layer count also moves the output head)\n"
    "  -ot, --override-tensor REGEX=gpu|cpu\n"
    "                           tensors whose name matches go there; first match wins; repeatable\n"
    "                           (implies --strategy manual; combine with -ngl for the rest); a rule\n"
    "                           places the whole block of a tensor it names (a layer's attention,\n"
    "                           its ffn or router, its experts, the output head)\n"
    "  --cpu-moe                keep every expert group (ffn_*_exps) in host memory, any strategy\n"
    "  --n-cpu-moe N            keep the expert groups of layers 0..N-1 in host memory\n"
    "  --json                   one JSON document instead of the table\n"
    "  machine (defaults: a 12 GiB RTX 3060-class card on PCIe 4.0 x16):\n"
    "  --device-memory SIZE     GPU memory (default 12GiB)\n"
    "  --device-overhead SIZE   CUDA context + cuBLAS workspace (default 384MiB)\n"
    "  --device-bandwidth SIZE  GPU memory bandwidth per second (default 360GB)\n"
    "  --host-bandwidth SIZE    host memory bandwidth per second (default 40GB)\n"
    "  --pcie-bandwidth SIZE    host<->device bandwidth per second (default 25GB)\n"
    "  --host-flops X, --device-flops X   compute rates in flop/s (defaults 0.5e12, 25e12)\n"
    "  --measure                measure host bandwidth (~0.5 s) instead of the default\n";

struct Options {
  std::string model;
  PlanRequest request;
  bool json = false;
  bool measure = false;
};

int bad(std::string_view message) {
  fmt::print(stderr, "vramfit plan: {}\n", message);
  return 2;
}

std::optional<uint64_t> parse_count(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::optional<double> parse_rate(std::string_view text) {
  try {
    size_t used = 0;
    double v = std::stod(std::string(text), &used);
    if (used == text.size() && v > 0) return v;
  } catch (...) {
  }
  return std::nullopt;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "REGEX=gpu|cpu" (also llama.cpp's CPU / CUDA0 spellings); the last '=' separates.
std::optional<OffloadRule> parse_rule(std::string_view text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  const std::string where = lower(text.substr(eq + 1));
  OffloadRule rule{std::string(text.substr(0, eq)), true};
  if (where == "gpu" || where == "device" || where.starts_with("cuda"))
    rule.to_device = true;
  else if (where == "cpu" || where == "host")
    rule.to_device = false;
  else
    return std::nullopt;
  return rule;
}

// Returns an exit code when parsing ends the command (error or --help), nullopt to go on.
std::optional<int> parse(std::span<const std::string_view> args, Options &o) {
  PlanRequest &r = o.request;
  bool strategy_given = false, ngl_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--measure") {
      o.measure = true;
      continue;
    }
    if (a == "--cpu-moe") {
      r.policy.cpu_moe = true;
      continue;
    }
    if (!a.starts_with("-")) {  // the model, as a positional argument
      if (!o.model.empty()) return bad(fmt::format("unexpected argument '{}' (see --help)", a));
      o.model = std::string(a);
      continue;
    }
    if (i + 1 >= args.size()) return bad(fmt::format("'{}' needs a value (see --help)", a));
    const std::string_view v = args[++i];
    auto size = [&](uint64_t &out) {
      auto s = parse_size(v);
      if (s) out = *s;
      return s.has_value();
    };
    auto rate = [&](double &out) {
      auto s = parse_size(v);
      if (s && *s > 0) out = double(*s);
      return s && *s > 0;
    };
    auto flops = [&](double &out) {
      auto s = parse_rate(v);
      if (s) out = *s;
      return s.has_value();
    };
    auto count32 = [&](uint32_t &out) {
      auto c = parse_count(v);
      if (c && *c > 0 && *c <= UINT32_MAX) out = static_cast<uint32_t>(*c);
      return c && *c > 0 && *c <= UINT32_MAX;
    };
    bool ok = true;
    if (a == "-m" || a == "--model")
      o.model = std::string(v);
    else if (a == "--vram-budget")
      ok = size(r.policy.vram_budget_bytes) && r.policy.vram_budget_bytes > 0;
    else if (a == "--reserve")
      ok = size(r.policy.reserve_bytes);
    else if (a == "-c" || a == "--ctx-size")
      ok = count32(r.n_ctx);
    else if (a == "--min-ctx")
      ok = count32(r.policy.min_ctx);
    else if (a == "-b" || a == "--batch-size")
      ok = count32(r.n_batch);
    else if (a == "--kv-type") {
      const std::string t = lower(v);
      ok = t == "f16" || t == "f32" || t == "q8_0";
      r.kv_type = t == "f32" ? KvType::f32 : t == "q8_0" ? KvType::q8_0 : KvType::f16;
    } else if (a == "--kv-placement") {
      ok = v == "follow" || v == "host" || v == "device";
      r.policy.kv_placement = v == "host"     ? KvPlacement::host
                              : v == "device" ? KvPlacement::device
                                              : KvPlacement::follow_layer;
    } else if (a == "--strategy") {
      ok = v == "fastest" || v == "layers" || v == "manual";
      r.policy.strategy = v == "layers"   ? OffloadStrategy::layers
                          : v == "manual" ? OffloadStrategy::manual
                                          : OffloadStrategy::fastest;
      strategy_given = true;
    } else if (a == "-ngl" || a == "--n-gpu-layers") {
      auto c = parse_count(v);
      ok = c && *c <= INT32_MAX;
      if (ok) r.policy.n_gpu_layers = static_cast<int32_t>(*c), ngl_given = true;
    } else if (a == "--n-cpu-moe") {
      auto c = parse_count(v);
      ok = c && *c <= INT32_MAX;
      if (ok) r.policy.n_cpu_moe = static_cast<int32_t>(*c);
    } else if (a == "-ot" || a == "--override-tensor") {
      auto rule = parse_rule(v);
      ok = rule.has_value();
      if (ok) r.policy.rules.push_back(*rule);
    } else if (a == "--device-memory")
      ok = size(r.machine.device_memory_bytes);
    else if (a == "--device-overhead")
      ok = size(r.machine.device_fixed_overhead_bytes);
    else if (a == "--device-bandwidth")
      ok = rate(r.machine.device_read_bandwidth);
    else if (a == "--host-bandwidth")
      ok = rate(r.machine.host_read_bandwidth);
    else if (a == "--pcie-bandwidth")
      ok = rate(r.machine.host_to_device_bandwidth);
    else if (a == "--host-flops")
      ok = flops(r.machine.host_flops);
    else if (a == "--device-flops")
      ok = flops(r.machine.device_flops);
    else
      return bad(fmt::format("unknown option '{}' (see --help)", a));
    if (!ok) return bad(fmt::format("bad value '{}' for {} (see --help)", v, a));
  }
  if (o.model.empty()) return bad("no model: pass -m MODEL (see --help)");
  if (!strategy_given && !r.policy.rules.empty())
    r.policy.strategy = OffloadStrategy::manual;
  else if (!strategy_given && ngl_given)
    r.policy.strategy = OffloadStrategy::layers;
  if (r.policy.strategy == OffloadStrategy::fastest && (ngl_given || !r.policy.rules.empty()))
    return bad("-ngl and -ot take effect with --strategy layers or manual, not fastest");
  if (r.policy.strategy == OffloadStrategy::layers && !r.policy.rules.empty())
    return bad("-ot needs --strategy manual");
  if (r.policy.min_ctx > r.n_ctx)
    return bad(fmt::format("--min-ctx {} is larger than -c {}", r.policy.min_ctx, r.n_ctx));
  return std::nullopt;
}

int run_plan(std::span<const std::string_view> args) {
  Options o;
  if (auto exit_code = parse(args, o)) return *exit_code;
  probe_host_memory(o.request.machine);
  if (o.measure) measure_host_read_bandwidth(o.request.machine);
  const auto start = std::chrono::steady_clock::now();
  const gguf::File file = gguf::File::open(o.model);
  const auto opened = std::chrono::steady_clock::now();
  const Plan plan = make_plan(file, o.request);
  const auto planned = std::chrono::steady_clock::now();
  if (o.json) {
    fmt::print("{}", plan.to_json());
    return 0;
  }
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  fmt::print("{}\n{}", file.name(), plan.to_table());
  fmt::print("\nheader read in {:.1f} ms, planned in {:.1f} ms\n", ms(start, opened), ms(opened, planned));
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("plan", "plan a GPU/CPU split under a VRAM byte budget (no GPU needed)", run_plan);

}  // namespace vramfit::cli
