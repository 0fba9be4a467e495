// `vramfit info (MODEL | -m MODEL) [--json] [--tensors]`: what a GGUF file holds, from its header alone.
#include <cmath>
#include <map>
#include <string>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kDescription =
    "Prints the architecture, hyper-parameters, tokenizer and tensor bytes per type of a GGUF\n"
    "file (header-only files too), and the parameters and weight bytes one generated token\n"
    "reads: a mixture-of-experts model reads k of its N experts per layer (expert_used_count of\n"
    "expert_count); token_embd counts one row per token (unless it is also the output head).";

struct Options {
  std::string model;
  bool json = false;
  bool tensors = false;
};

struct TypeTotal {
  size_t tensors = 0;
  uint64_t bytes = 0;
};

// ---- facts shared by both outputs ----

struct Summary {
  std::string_view architecture;
  std::string_view name;
  std::string_view tokenizer;
  uint64_t vocab_size = 0;
  std::optional<uint64_t> context_length;
  std::vector<const gguf::KeyValue *> hyper_parameters;  // the `<arch>.*` keys, in file order
  std::map<std::string_view, TypeTotal> by_type;
  size_t tensors_without_data = 0;
  // When the file is a model the planner reads (not a vocab-only file): its experts and what a
  // generated token reads of its weights.
  std::optional<ModelShape> shape;
  WeightCounts weights;
};

Summary summarize(const gguf::File &file) {
  Summary s;
  s.architecture = file.get_or<std::string_view>("general.architecture", "unknown");
  s.name = file.get_or<std::string_view>("general.name", "");
  s.tokenizer = file.get_or<std::string_view>("tokenizer.ggml.model", "none");
  if (const gguf::Value *tokens = file.find("tokenizer.ggml.tokens")) s.vocab_size = tokens->array_size();
  std::string context_key = fmt::format("{}.context_length", s.architecture);
  if (file.has(context_key)) s.context_length = file.get<uint64_t>(context_key);
  std::string prefix = fmt::format("{}.", s.architecture);
  for (const gguf::KeyValue &kv : file.metadata())
    if (kv.key.starts_with(prefix)) s.hyper_parameters.push_back(&kv);
  for (const gguf::TensorInfo &t : file.tensors()) {
    TypeTotal &total = s.by_type[type_name(t.type)];
    total.tensors += 1;
    total.bytes += t.n_bytes;
    if (!file.has_data(t)) s.tensors_without_data += 1;
  }
  if (file.tensors().empty()) return s;  // a vocabulary file: no weights to count
  try {
    s.shape = ModelShape::from_gguf(file);
    s.weights = count_weights(*s.shape);
  } catch (const Error &) {
    s.shape.reset();  // not a model the planner reads (no block_count...): nothing to count
  }
  return s;
}

std::string billions(double params) { return fmt::format("{:.2f} B", params / 1e9); }

std::string shape_of(const gguf::TensorInfo &t) {
  std::string out;
  for (uint32_t d = 0; d < t.n_dims; ++d) out += fmt::format("{}{}", d ? ", " : "", t.ne[d]);
  return out;
}

// ---- text ----

std::string human_bytes(uint64_t bytes) {
  if (bytes >= 1000000000) return format_bytes(bytes);
  return fmt::format("{:.2f} MB ({} bytes)", bytes / 1e6, bytes);
}

// A metadata value as a person reads it; long arrays are summarized.
std::string text_of(const gguf::Value &v) {
  using gguf::ValueType;
  switch (v.type()) {
    case ValueType::string: return std::string(v.as_string());
    case ValueType::boolean: return v.as_bool() ? "true" : "false";
    case ValueType::f32: case ValueType::f64: return fmt::format("{:g}", v.as_float());
    case ValueType::u64: return fmt::format("{}", v.as_uint());
    case ValueType::array: break;
    default: return fmt::format("{}", v.as_int());
  }
  std::string elements;
  if (v.array_size() <= 8 && v.array_type() != ValueType::array)
    v.for_each_element([&](uint64_t i, const gguf::Value &e) {
      elements += fmt::format("{}{}", i ? ", " : "", text_of(e));
    });
  else
    elements = fmt::format("{} x {}", v.array_size(), gguf::value_type_name(v.array_type()));
  return fmt::format("[{}]", elements);
}

// Experts, and total vs active parameters and bytes (per generated token, the KV cache aside).
void print_active(const Summary &s) {
  if (!s.shape) return;
  const ModelShape &m = *s.shape;
  const WeightCounts &w = s.weights;
  if (m.is_moe())
    fmt::print("experts:       {} per layer, {} used per token (width {}); {} parameters and {} in experts\n",
               m.n_expert, m.n_expert_used, m.n_ff_exp, billions(double(w.expert_params)), human_bytes(w.expert_bytes));
  fmt::print("parameters:    {} total, {} active per token\n", billions(double(w.params)), billions(w.active_params));
  fmt::print("weights read:  {} per generated token (of {}; token_embd: one row)\n",
             human_bytes(static_cast<uint64_t>(w.active_bytes)), human_bytes(w.bytes));
}

void print_text(const gguf::File &file, const Summary &s, bool list_tensors) {
  fmt::print("file:          {}\n", file.name());
  fmt::print("format:        GGUF v{}, alignment {}, {} metadata keys, {} tensors\n", file.version(),
             file.alignment(), file.metadata().size(), file.tensors().size());
  fmt::print("architecture:  {}\n", s.architecture);
  if (!s.name.empty()) fmt::print("name:          {}\n", s.name);
  if (s.vocab_size > 0) fmt::print("tokenizer:     {}, {} tokens\n", s.tokenizer, s.vocab_size);
  else fmt::print("tokenizer:     none in this file\n");
  if (s.context_length) fmt::print("context:       {} tokens\n", *s.context_length);
  if (!s.hyper_parameters.empty()) fmt::print("hyper-parameters:\n");
  for (const gguf::KeyValue *kv : s.hyper_parameters)
    fmt::print("  {:<40} {}\n", kv->key, text_of(kv->value));

  fmt::print("tensor data by type:\n  {:<8} {:>8} {:>16}\n", "type", "tensors", "bytes");
  for (const auto &[type, total] : s.by_type)
    fmt::print("  {:<8} {:>8} {:>16}\n", type, total.tensors, total.bytes);
  fmt::print("  {:<8} {:>8} {:>16}\n", "total", file.tensors().size(), file.tensor_data_bytes());
  fmt::print("tensor data:   {}", human_bytes(file.tensor_data_bytes()));
  if (s.tensors_without_data > 0)
    fmt::print(" -- absent from this file ({} of {} tensors have no data: header-only or truncated)",
               s.tensors_without_data, file.tensors().size());
  fmt::print("\n");
  print_active(s);

  if (!list_tensors) return;
  fmt::print("tensors:\n  {:<40} {:<24} {:<8} {:>14}\n", "name", "shape", "type", "bytes");
  for (const gguf::TensorInfo &t : file.tensors())
    fmt::print("  {:<40} {:<24} {:<8} {:>14}\n", t.name, fmt::format("[{}]", shape_of(t)), type_name(t.type),
               t.n_bytes);
}

// ---- JSON ----

std::string json_of(const gguf::Value &v) {
  using gguf::ValueType;
  switch (v.type()) {
    case ValueType::string: return json_quote(v.as_string());
    case ValueType::boolean: return v.as_bool() ? "true" : "false";
    case ValueType::f32: case ValueType::f64: {
      double d = v.as_float();
      return std::isfinite(d) ? fmt::format("{}", d) : "null";  // JSON has no NaN / inf
    }
    case ValueType::u64: return fmt::format("{}", v.as_uint());
    case ValueType::array: break;
    default: return fmt::format("{}", v.as_int());
  }
  std::string out = "[";
  v.for_each_element([&](uint64_t i, const gguf::Value &e) { out += fmt::format("{}{}", i ? "," : "", json_of(e)); });
  out += ']';
  return out;
}

// ,"experts":{count, used, feed_forward_length} or null, "parameters":{total, active, experts},
// "weight_bytes":{total, active_per_token, experts}; nothing when the file is no model.
std::string json_active(const Summary &s) {
  if (!s.shape) return "";
  const ModelShape &m = *s.shape;
  const WeightCounts &w = s.weights;
  std::string out = m.is_moe() ? fmt::format(",\"experts\":{{\"count\":{},\"used\":{},\"feed_forward_length\":{}}}",
                                             m.n_expert, m.n_expert_used, m.n_ff_exp)
                               : std::string(",\"experts\":null");
  out += fmt::format(",\"parameters\":{{\"total\":{},\"active\":{:.0f},\"experts\":{}}}", w.params, w.active_params,
                     w.expert_params);
  out += fmt::format(",\"weight_bytes\":{{\"total\":{},\"active_per_token\":{:.0f},\"experts\":{}}}", w.bytes,
                     w.active_bytes, w.expert_bytes);
  return out;
}

void print_json(const gguf::File &file, const Summary &s, bool list_tensors) {
  std::string out = "{";
  out += fmt::format("\"file\":{},\"version\":{},\"alignment\":{},\"metadata_keys\":{},",
                     json_quote(file.name()), file.version(), file.alignment(), file.metadata().size());
  out += fmt::format("\"architecture\":{},\"name\":{},", json_quote(s.architecture), json_quote(s.name));
  out += fmt::format("\"tokenizer\":{{\"model\":{},\"vocab_size\":{}}},", json_quote(s.tokenizer),
                     s.vocab_size);
  out += fmt::format("\"context_length\":{},",
                     s.context_length ? fmt::format("{}", *s.context_length) : "null");
  out += "\"hyper_parameters\":{";
  for (size_t i = 0; i < s.hyper_parameters.size(); ++i)
    out += fmt::format("{}{}:{}", i ? "," : "", json_quote(s.hyper_parameters[i]->key),
                       json_of(s.hyper_parameters[i]->value));
  out += "},\"types\":[";
  bool first = true;
  for (const auto &[type, total] : s.by_type) {
    out += fmt::format("{}{{\"type\":{},\"tensors\":{},\"bytes\":{}}}", first ? "" : ",",
                       json_quote(type), total.tensors, total.bytes);
    first = false;
  }
  out += fmt::format("],\"tensor_count\":{},\"tensor_bytes\":{},\"data_present\":{}",
                     file.tensors().size(), file.tensor_data_bytes(),
                     s.tensors_without_data == 0 ? "true" : "false");
  out += json_active(s);
  if (list_tensors) {
    out += ",\"tensors\":[";
    for (size_t i = 0; i < file.tensors().size(); ++i) {
      const gguf::TensorInfo &t = file.tensors()[i];
      out += fmt::format("{}{{\"name\":{},\"shape\":[{}],\"type\":{},\"bytes\":{},\"offset\":{}}}",
                         i ? "," : "", json_quote(t.name), shape_of(t),
                         json_quote(type_name(t.type)), t.n_bytes, t.file_offset);
    }
    out += "]";
  }
  fmt::print("{}}}\n", out);
}

// ---- the command ----

int run_info(std::span<const std::string_view> args) {
  Options options;
  OptionParser parser("info", "(MODEL | -m MODEL) [--json] [--tensors]", kDescription);
  auto set_model = [&options](std::string_view v) {
    if (!options.model.empty())
      throw UsageError{fmt::format("unexpected argument '{}': the model is '{}'", v, options.model)};
    options.model = std::string(v);
  };
  parser.option({"-m", "--model"}, "FILE", "the GGUF file (or give it as the first argument)", set_model);
  parser.positional("MODEL", set_model);
  parser.flag({"--json"}, "one JSON document instead of text", [&options] { options.json = true; });
  parser.flag({"--tensors"}, "also list every tensor: name, shape, type, bytes", [&options] { options.tensors = true; });
  parser.finally([&options] {
    if (options.model.empty()) throw UsageError{"no model: pass MODEL or -m MODEL"};
  });
  if (auto exit_code = parser.parse(args)) return *exit_code;
  auto file = gguf::File::open(options.model);
  Summary summary = summarize(file);
  if (options.json) print_json(file, summary, options.tensors);
  else print_text(file, summary, options.tensors);
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("info", "describe a GGUF file: architecture, hyper-parameters, tensors", run_info);

}  // namespace vramfit::cli
