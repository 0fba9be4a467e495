// `vramfit plan -m MODEL --vram-budget 11.5GiB ...`: a GPU/CPU split under a byte budget, from
// the model's header alone (no GPU needed). It takes run's placement and context flags, so a run
// command line can be planned first.
#include <chrono>
#include <string>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kDescription =
    "Plans which tensors and KV-cache layers go to the GPU so that everything vramfit allocates\n"
    "there stays within the budget, and predicts prompt and generation speed. Reads only the\n"
    "header, so header-only files work. The machine is measured where it can be (host memory;\n"
    "with --measure, host bandwidth and the CPU kernels' speed for the model's weight types at\n"
    "-t threads), given by the flags below, or assumed (a 12 GiB RTX 3060-class card on PCIe\n"
    "4.0 x16); the table says which.";

struct PlanOptions {
  bool json = false;
  bool measure = false;
  MachineProfile machine;
};

// The machine facts a user may know better than the defaults; each one given is marked so.
void add_machine_options(OptionParser &p, PlanOptions &plan) {
  MachineProfile &m = plan.machine;
  auto size = [&p](const char *name, const char *help, uint64_t &out, bool &given) {
    p.option({name}, "SIZE", help, [name, &out, &given](std::string_view v) {
      out = parse_size_flag(name, v);
      given = true;
    });
  };
  auto rate = [&p](const char *name, const char *help, double &out, bool &given) {
    p.option({name}, "SIZE", help, [name, &out, &given](std::string_view v) {
      out = static_cast<double>(parse_size_flag(name, v));
      given = true;
    });
  };
  auto flops = [&p](const char *name, const char *help, double &out, bool &given) {
    p.option({name}, "X", help, [name, &out, &given](std::string_view v) {
      out = parse_real(name, v);
      if (!(out > 0)) throw UsageError{fmt::format("{}: {} must be above 0 (flop/s, e.g. 25e12)", name, v)};
      given = true;
    });
  };
  p.group("machine (defaults: a 12 GiB RTX 3060-class card on PCIe 4.0 x16, a desktop's RAM)");
  size("--device-memory", "GPU memory (default 12GiB)", m.device_memory_bytes, m.given.device_memory);
  size("--device-overhead", "CUDA context + cuBLAS workspace (default 384MiB)", m.device_fixed_overhead_bytes,
       m.given.device_fixed_overhead);
  rate("--device-bandwidth", "GPU memory bandwidth per second (default 360GB)", m.device_read_bandwidth,
       m.given.device_read_bandwidth);
  rate("--host-bandwidth", "host memory bandwidth per second (default 40GB; --measure measures it)",
       m.host_read_bandwidth, m.given.host_read_bandwidth);
  rate("--pcie-bandwidth", "host<->device bandwidth per second (default 25GB)", m.host_to_device_bandwidth,
       m.given.host_to_device_bandwidth);
  flops("--host-flops", "host compute in flop/s (default 0.5e12)", m.host_flops, m.given.host_flops);
  flops("--device-flops", "GPU compute in flop/s (default 25e12)", m.device_flops, m.given.device_flops);
  p.option({"--host-memory"}, "SIZE", "host memory available to the model (default: MemAvailable of this machine)",
           [&m](std::string_view v) {
             m.host_available_bytes = m.host_memory_bytes = parse_size_flag("--host-memory", v);
             m.given.host_memory = true;
           });
  p.flag({"--measure"}, "measure host read bandwidth and the CPU kernels' speed per weight type at -t threads (~0.5 s)",
         [&plan] { plan.measure = true; });
}

// The plan's machine: what this one measures, then what the flags give (they win), then --device sim.
MachineProfile machine_for(const PlanOptions &plan, const CommonOptions &o, const ModelShape &model) {
  MachineProfile m = plan.machine;
  if (!m.given.host_memory) probe_host_memory(m);
  if (plan.measure && !m.given.host_read_bandwidth) measure_host_read_bandwidth(m);
  if (plan.measure)
    measure_host_kernels(m, kernel_shapes(model, static_cast<uint32_t>(o.context.n_batch)), o.context.n_threads);
  // A simulated device is exactly its capacity, with no CUDA context: plan what run would do.
  const std::string &device = o.model.device;
  if (device.starts_with("sim:")) {
    if (!m.given.device_memory) m.device_memory_bytes = *parse_size(device.substr(4)), m.given.device_memory = true;
    if (!m.given.device_fixed_overhead) m.device_fixed_overhead_bytes = 0, m.given.device_fixed_overhead = true;
  }
  return m;
}

int run_plan(std::span<const std::string_view> args) {
  CommonOptions o;
  PlanOptions plan;
  OptionParser parser("plan", "-m MODEL [--vram-budget SIZE] [options]", kDescription);
  add_model_options(parser, o);
  add_context_options(parser, o);
  add_machine_options(parser, plan);
  parser.group("output");
  parser.flag({"--json"}, "one JSON document instead of the table", [&plan] { plan.json = true; });
  // As before the shared parser: `vramfit plan MODEL` works too.
  parser.positional("MODEL", [&o](std::string_view v) {
    if (!o.model_path.empty()) throw UsageError{fmt::format("unexpected argument '{}': the model is '{}'", v, o.model_path)};
    o.model_path = std::string(v);
  });
  if (auto exit_code = parser.parse(args)) return *exit_code;
  if (o.model.device == "cpu") throw UsageError{"--device cpu: nothing to plan (plan splits a model with a GPU)"};

  const auto start = std::chrono::steady_clock::now();
  const gguf::File file = gguf::File::open(o.model_path);
  const auto opened = std::chrono::steady_clock::now();
  PlanRequest request;
  const ModelShape shape = ModelShape::from_gguf(file);
  resolve_context(o, static_cast<int32_t>(shape.n_ctx_train));
  request.n_ctx = static_cast<uint32_t>(o.context.n_ctx);
  request.n_batch = static_cast<uint32_t>(o.context.n_batch);
  request.kv_type = o.context.kv_type == GgmlType::F32 ? KvType::f32
                    : o.context.kv_type == GgmlType::Q8_0 ? KvType::q8_0
                                                           : KvType::f16;
  request.policy = o.model.offload;
  request.n_contexts = static_cast<uint32_t>(o.model.n_contexts);  // -np: serve's slots
  request.machine = machine_for(plan, o, shape);
  // As run: a simulated device's budget is its capacity unless one is given.
  if (o.model.device.starts_with("sim:") && request.policy.vram_budget_bytes == 0)
    request.policy.vram_budget_bytes = request.machine.device_memory_bytes;
  const Plan result = make_plan(file, request);
  const auto planned = std::chrono::steady_clock::now();
  if (plan.json) {
    fmt::print("{}", result.to_json());
    return 0;
  }
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  fmt::print("{}\n{}", file.name(), result.to_table());
  fmt::print("\nheader read in {:.1f} ms, planned in {:.1f} ms\n", ms(start, opened), ms(opened, planned));
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("plan", "plan a GPU/CPU split under a VRAM byte budget (no GPU needed)", run_plan);

}  // namespace vramfit::cli
