// libFuzzer: the planner driven by header shapes. Byte 0 even: a GGUF header is written from
// fuzzed hyper-parameters, tensor types and dimensions (some tensors dropped, sizes from sane to
// absurd) and a fuzzed request (budget, context, strategy, -ngl, MoE options, machine); byte 0
// odd: the rest is a GGUF header as it is, planned with a 12 GiB budget. Either path goes through
// gguf::File::from_bytes and ModelShape::from_gguf as `vramfit plan` does. make_plan must refuse
// with a vramfit::Error or keep its promise: device total <= budget, every device tensor given at
// least its bytes, rounded to the device alignment.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_util.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace {

using namespace vramfit;

// A GGUF v3 header (no data section: header-only, as the planner needs).
class HeaderWriter {
 public:
  void u32(const std::string &key, uint32_t v) { kv(key, 4, &v, 4); }
  void str(const std::string &key, const std::string &v) {
    key_of(key, 8);
    u64_raw(v.size());
    kv_bytes_ += v;
    ++n_kv_;
  }
  void tensor(const std::string &name, GgmlType type, std::vector<int64_t> ne) {
    string_raw(tensors_, name);
    append(tensors_, uint32_t(ne.size()));
    for (int64_t n : ne) append(tensors_, n);
    append(tensors_, uint32_t(type));
    const auto traits = type_traits(uint32_t(type));
    uint64_t bytes = 0;  // only for the next offset; the reader checks the real size
    if (traits && !ne.empty() && ne[0] % traits->block_size == 0) {
      bytes = uint64_t(ne[0] / traits->block_size) * traits->type_size;
      for (size_t i = 1; i < ne.size(); ++i) bytes *= uint64_t(ne[i]);
    }
    append(tensors_, offset_);
    offset_ += (bytes + 31) / 32 * 32;
    ++n_tensors_;
  }
  std::string bytes() const {
    std::string out = "GGUF";
    append(out, uint32_t{3});
    append(out, n_tensors_);
    append(out, n_kv_);
    return out + kv_bytes_ + tensors_;
  }

 private:
  template <class T>
  static void append(std::string &out, T v) {
    out.append(reinterpret_cast<const char *>(&v), sizeof v);
  }
  static void string_raw(std::string &out, const std::string &s) {
    append(out, uint64_t(s.size()));
    out += s;
  }
  void u64_raw(uint64_t v) { append(kv_bytes_, v); }
  void key_of(const std::string &key, uint32_t type) {
    string_raw(kv_bytes_, key);
    append(kv_bytes_, type);
  }
  void kv(const std::string &key, uint32_t type, const void *v, size_t n) {
    key_of(key, type);
    kv_bytes_.append(static_cast<const char *>(v), n);
    ++n_kv_;
  }
  std::string kv_bytes_, tensors_;
  uint64_t n_kv_ = 0, n_tensors_ = 0, offset_ = 0;
};

constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0,
                               GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                               GgmlType::MXFP4, GgmlType::IQ2_XS};
constexpr const char *kArchs[] = {"llama", "qwen2", "qwen3", "qwen3moe", "gpt-oss"};

// Mostly sizes a model has, sometimes any 32-bit value.
uint32_t dim(FuzzedDataProvider &in, uint32_t sane_max) {
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: return in.ConsumeIntegral<uint32_t>();
    case 1: return in.ConsumeIntegralInRange<uint32_t>(0, 64);
    default: return in.ConsumeIntegralInRange<uint32_t>(1, sane_max / 256) * 256;
  }
}

std::string fuzzed_header(FuzzedDataProvider &in) {
  HeaderWriter h;
  const std::string arch = in.PickValueInArray(kArchs);
  const std::string a = arch + ".";
  const uint32_t n_layer = in.ConsumeIntegralInRange<uint32_t>(0, 40);
  const uint32_t n_embd = dim(in, 16384), n_head = in.ConsumeIntegralInRange<uint32_t>(0, 128);
  const uint32_t n_head_kv = in.ConsumeIntegralInRange<uint32_t>(0, 128), head_dim = dim(in, 512);
  const uint32_t n_ff = dim(in, 65536), n_vocab = dim(in, 262144);
  const uint32_t n_expert = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 256) : 0;
  const uint32_t n_expert_used = in.ConsumeIntegralInRange<uint32_t>(0, 16), n_ff_exp = dim(in, 8192);
  h.str("general.architecture", arch);
  h.u32(a + "block_count", n_layer + (in.ConsumeIntegralInRange(0, 15) == 0 ? 1 : 0));  // sometimes a lie
  h.u32(a + "embedding_length", n_embd);
  h.u32(a + "attention.head_count", n_head);
  h.u32(a + "attention.head_count_kv", n_head_kv);
  if (in.ConsumeBool()) h.u32(a + "attention.key_length", head_dim);
  h.u32(a + "feed_forward_length", n_ff);
  h.u32(a + "context_length", in.ConsumeIntegral<uint32_t>());
  if (n_expert > 0) {
    h.u32(a + "expert_count", n_expert);
    h.u32(a + "expert_used_count", n_expert_used);
    h.u32(a + "expert_feed_forward_length", n_ff_exp);
  }
  if (arch == "gpt-oss") h.u32(a + "attention.sliding_window", in.ConsumeIntegralInRange<uint32_t>(0, 4096));

  const GgmlType weight_type = in.PickValueInArray(kTypes), other_type = in.PickValueInArray(kTypes);
  const int64_t e = n_embd, q = int64_t{n_head} * head_dim, kv = int64_t{n_head_kv} * head_dim;
  auto maybe = [&](const std::string &name, GgmlType type, std::vector<int64_t> ne) {
    if (in.ConsumeIntegralInRange(0, 63) != 0) h.tensor(name, type, std::move(ne));  // sometimes missing
  };
  maybe("token_embd.weight", other_type, {e, n_vocab});
  for (uint32_t il = 0; il < n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    const GgmlType t = in.ConsumeBool() ? weight_type : other_type;
    maybe(b + "attn_norm.weight", GgmlType::F32, {e});
    maybe(b + "attn_q.weight", t, {e, q});
    maybe(b + "attn_k.weight", t, {e, kv});
    maybe(b + "attn_v.weight", t, {e, kv});
    maybe(b + "attn_output.weight", t, {q, e});
    maybe(b + "ffn_norm.weight", GgmlType::F32, {e});
    if (n_expert > 0) {
      maybe(b + "ffn_gate_inp.weight", GgmlType::F32, {e, n_expert});
      maybe(b + "ffn_gate_exps.weight", t, {e, n_ff_exp, n_expert});
      maybe(b + "ffn_up_exps.weight", t, {e, n_ff_exp, n_expert});
      maybe(b + "ffn_down_exps.weight", t, {n_ff_exp, e, n_expert});
    } else {
      maybe(b + "ffn_gate.weight", t, {e, n_ff});
      maybe(b + "ffn_up.weight", t, {e, n_ff});
      maybe(b + "ffn_down.weight", t, {n_ff, e});
    }
  }
  maybe("output_norm.weight", GgmlType::F32, {e});
  if (in.ConsumeBool()) maybe("output.weight", weight_type, {e, n_vocab});
  return h.bytes();
}

PlanRequest fuzzed_request(FuzzedDataProvider &in) {
  constexpr const char *kRules[] = {"ffn_.*=cpu", "exps=cpu", "attn=gpu", "output=gpu", "blk\\.1\\.=cpu", "("};
  PlanRequest r;
  r.n_ctx = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 131072) : in.ConsumeIntegral<uint32_t>();
  r.n_batch = in.ConsumeIntegralInRange<uint32_t>(0, 4096);
  r.kv_type = in.PickValueInArray({KvType::f16, KvType::f32, KvType::q8_0});
  OffloadPolicy &p = r.policy;
  p.vram_budget_bytes = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 64ull << 30) : in.ConsumeIntegral<uint64_t>();
  p.reserve_bytes = in.ConsumeIntegralInRange<uint64_t>(0, 2ull << 30);
  p.strategy = in.PickValueInArray({OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual});
  p.n_gpu_layers = in.ConsumeIntegralInRange<int32_t>(-2, 48);
  for (int n = in.ConsumeIntegralInRange(0, 2); n > 0; --n) {
    const std::string rule = in.PickValueInArray(kRules);
    const size_t eq = rule.find('=');
    p.rules.push_back({rule.substr(0, eq), eq == std::string::npos || rule.substr(eq + 1) == "gpu"});
  }
  p.kv_placement = in.PickValueInArray({KvPlacement::follow_layer, KvPlacement::host, KvPlacement::device});
  p.stream_prefill = in.ConsumeBool();
  p.min_ctx = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 8192) : 0;
  p.cpu_moe = in.ConsumeBool();
  p.n_cpu_moe = in.ConsumeIntegralInRange<int32_t>(-1, 48);
  MachineProfile &m = r.machine;
  m.device_memory_bytes = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 96ull << 30) : in.ConsumeIntegral<uint64_t>();
  m.device_free_bytes = in.ConsumeIntegralInRange<uint64_t>(0, m.device_memory_bytes);
  m.device_fixed_overhead_bytes = in.ConsumeIntegralInRange<uint64_t>(0, 1ull << 30);
  m.host_available_bytes = in.ConsumeIntegral<uint64_t>();
  return r;
}

void check_promise(const Plan &plan) {
  if (plan.device.total() > plan.budget_bytes) fuzz::violated("the plan's device total exceeds its budget");
  uint64_t weights = 0;
  for (const PlannedTensor &t : plan.tensors) {
    if (t.location == Location::host) continue;
    if (t.device_bytes < t.bytes || t.device_bytes % Plan::device_alignment != 0)
      fuzz::violated("a device tensor is given fewer than its bytes, or unaligned");
    weights += t.device_bytes;
  }
  if (weights > plan.device.weights) fuzz::violated("device tensors exceed the device weight total");
}

void plan_header(const std::string &header, const PlanRequest &request) {
  try {
    const auto file = gguf::File::from_bytes({reinterpret_cast<const std::byte *>(header.data()), header.size()},
                                             "fuzz.gguf");
    check_promise(make_plan(file, request));
  } catch (const Error &) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::write_seeds_if_asked([](fuzz::SeedWriter &seeds) {
    for (const auto &path : fuzz::shared_files("models/header-only", ".gguf")) seeds.add("\1" + *fuzz::read_file(path));
    for (char c = 0; c < 16; c += 2) seeds.add(std::string(64, c));
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) {
    PlanRequest request;
    request.policy.vram_budget_bytes = 12ull << 30;
    plan_header(std::string(reinterpret_cast<const char *>(data) + 1, size - 1), request);
    return 0;
  }
  FuzzedDataProvider in(data + 1, size - 1);
  const std::string header = fuzzed_header(in);
  plan_header(header, fuzzed_request(in));
  return 0;
}
