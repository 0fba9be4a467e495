// vramfit::quantize_file: GGUF in, GGUF out, each weight converted to the type its mix gives it.
#include <algorithm>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/log.hpp"
#include "quant/mix.hpp"
#include "quant/quant.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/quantize.hpp"

namespace vramfit {
namespace {

// One output tensor: where it comes from and what it becomes.
struct Plan {
  const gguf::TensorInfo *info;
  GgmlType to;
  bool requantized;
};

bool is_plain(GgmlType type) { return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16; }

quant::ModelShape model_shape(const gguf::File &file) {
  const std::string arch(file.get_or<std::string_view>("general.architecture", "llama"));
  quant::ModelShape shape;
  shape.n_layers = file.get_or<int>(arch + ".block_count", 0);
  const int n_head = file.get_or<int>(arch + ".attention.head_count", 1);
  const int n_head_kv = file.get_or<int>(arch + ".attention.head_count_kv", n_head);
  shape.n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 1;
  shape.has_output = file.find_tensor("output.weight") != nullptr;
  shape.llama_70b = arch == "llama" && shape.n_layers == 80 && n_head_kv != n_head;  // as llama.cpp types it
  return shape;
}

Plan plan_tensor(const quant::Mix &mix, const quant::ModelShape &shape, const gguf::TensorInfo &info) {
  const quant::TensorShape tensor{info.name, static_cast<int>(info.n_dims), info.ne[0]};
  const GgmlType to = quant::is_quantizable(tensor) ? quant::tensor_type(mix, shape, tensor) : info.type;
  if (to != info.type && !quant::has_reference(info.type))
    detail::fail(ErrorCode::unsupported, "tensor '{}' has type {}, which vramfit cannot dequantize", info.name,
                 type_name(info.type));
  return {&info, to, to != info.type && !is_plain(info.type)};
}

// Converts rows [begin, end) of a tensor: dequantize to f32 (unless it is f32), quantize.
void convert_rows(const Plan &plan, const std::byte *src, std::byte *dst, int64_t begin, int64_t end) {
  const int64_t ne0 = plan.info->ne[0];
  const uint64_t in_stride = row_bytes(plan.info->type, ne0), out_stride = row_bytes(plan.to, ne0);
  std::vector<float> row(static_cast<size_t>(ne0));
  for (int64_t r = begin; r < end; ++r) {
    quant::dequantize_row_ref(plan.info->type, src + r * in_stride, row.data(), ne0);
    quant::quantize_row_ref(plan.to, row.data(), dst + r * out_stride, ne0);
  }
}

// Splits the rows over n_threads threads (each row is independent, so the bytes do not depend
// on the split). The first exception of any thread is rethrown.
void convert_tensor(const Plan &plan, const std::byte *src, std::byte *dst, int n_threads) {
  const int64_t n_rows = plan.info->n_rows();
  const int64_t n_parts = std::clamp<int64_t>(n_threads, 1, std::max<int64_t>(n_rows, 1));
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> threads;
  for (int64_t part = 0; part < n_parts; ++part) {
    const int64_t begin = n_rows * part / n_parts, end = n_rows * (part + 1) / n_parts;
    auto work = [&, begin, end] {
      try {
        convert_rows(plan, src, dst, begin, end);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    };
    if (part + 1 == n_parts) work();
    else threads.emplace_back(work);
  }
  for (std::thread &t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

void quantize_rows(GgmlType type, const float *src, void *dst, int64_t n_rows, int64_t row_length) {
  if (!quant::has_reference(type))
    detail::fail(ErrorCode::unsupported, "quantize_rows: {} has no quantizer", type_name(type));
  quant::check_row(type, row_length, "quantize_rows");
  const uint64_t row = row_bytes(type, row_length);
  for (int64_t r = 0; r < n_rows; ++r)
    quant::quantize_row_ref(type, src + r * row_length, static_cast<std::byte *>(dst) + row * static_cast<uint64_t>(r),
                            row_length);
}

std::string quantize_mix_names() {
  std::string names;
  for (const quant::Mix &mix : quant::mixes()) names += (names.empty() ? "" : ", ") + std::string(mix.name);
  return names;
}

namespace {

// One warning for the whole file (a 70B model has hundreds of such tensors), naming the first.
void warn_requantized(const std::vector<Plan> &plans) {
  const auto first = std::ranges::find_if(plans, [](const Plan &p) { return p.requantized; });
  if (first == plans.end()) return;
  const auto n = std::ranges::count_if(plans, [](const Plan &p) { return p.requantized; });
  detail::log_warn("requantizing {} of {} tensors from an already-quantized type (the first: '{}', {} to {}): quality "
                   "drops; quantize from the F32/F16 original if you have it",
                   n, plans.size(), first->info->name, type_name(first->info->type), type_name(first->to));
}

}  // namespace

QuantizeResult quantize_file(const std::filesystem::path &in, const std::filesystem::path &out,
                             const QuantizeParams &params) {
  const auto mix = quant::find_mix(params.mix);
  if (!mix) detail::fail(ErrorCode::invalid_argument, "unknown quantization type '{}' (one of: {})", params.mix, quantize_mix_names());
  const int n_threads = params.n_threads > 0 ? params.n_threads : std::max(1u, std::thread::hardware_concurrency());

  const gguf::File file = gguf::File::open(in);
  const quant::ModelShape shape = model_shape(file);
  std::vector<Plan> plans;
  for (const gguf::TensorInfo &info : file.tensors()) plans.push_back(plan_tensor(*mix, shape, info));
  warn_requantized(plans);

  gguf::Writer writer(file.alignment(), 3);
  for (const gguf::KeyValue &kv : file.metadata()) writer.set_value(std::string(kv.key), kv.value);
  writer.set_u32("general.quantization_version", 2);  // ggml's GGML_QNT_VERSION
  writer.set_u32("general.file_type", mix->file_type);

  QuantizeResult result;
  result.n_tensors = plans.size();
  for (const Plan &plan : plans) {
    const std::span<const std::byte> src = file.data(*plan.info);  // throws for a truncated file
    result.bytes_in += src.size();
    result.bytes_out += row_bytes(plan.to, plan.info->ne[0]) * plan.info->n_rows();
    result.n_converted += plan.to != plan.info->type;
    result.n_requantized += plan.requantized;
    const std::span<const int64_t> ne(plan.info->ne.data(), plan.info->n_dims);
    writer.add_tensor(plan.info->name, plan.to, ne, [&plan, src, n_threads](std::span<std::byte> dst) {
      if (plan.to == plan.info->type) std::memcpy(dst.data(), src.data(), src.size());
      else convert_tensor(plan, src.data(), dst.data(), n_threads);
    });
  }
  writer.write_file(out, [&](size_t done, size_t total) {
    if (!params.progress || done == 0) return;
    const Plan &plan = plans[done - 1];
    params.progress({done, total, plan.info->name, plan.info->type, plan.to, plan.requantized});
  });
  return result;
}

}  // namespace vramfit
