#include "quant/mix.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <string>

namespace vramfit::quant {
namespace {

using enum GgmlType;

// general.file_type values (llama.cpp's llama_ftype).
enum FileType : uint32_t {
  ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7, MOSTLY_Q2_K = 10,
  MOSTLY_Q3_K_S = 11, MOSTLY_Q3_K_M = 12, MOSTLY_Q4_K_S = 14, MOSTLY_Q4_K_M = 15,
  MOSTLY_Q5_K_M = 17, MOSTLY_Q6_K = 18, MOSTLY_MXFP4_MOE = 38,
};

constexpr std::array kMixes = {
    Mix{"F32", F32, ALL_F32},          Mix{"F16", F16, MOSTLY_F16},
    Mix{"Q4_0", Q4_0, MOSTLY_Q4_0},    Mix{"Q8_0", Q8_0, MOSTLY_Q8_0},
    Mix{"Q2_K", Q2_K, MOSTLY_Q2_K},    Mix{"Q3_K_S", Q3_K, MOSTLY_Q3_K_S},
    Mix{"Q3_K_M", Q3_K, MOSTLY_Q3_K_M}, Mix{"Q4_K_S", Q4_K, MOSTLY_Q4_K_S},
    Mix{"Q4_K_M", Q4_K, MOSTLY_Q4_K_M}, Mix{"Q5_K_M", Q5_K, MOSTLY_Q5_K_M},
    Mix{"Q6_K", Q6_K, MOSTLY_Q6_K},    Mix{"MXFP4_MOE", Q8_0, MOSTLY_MXFP4_MOE},
};

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
bool ends_with(std::string_view s, std::string_view end) { return s.size() >= end.size() && s.substr(s.size() - end.size()) == end; }

int64_t block_size(GgmlType type) { return type_traits(static_cast<uint32_t>(type))->block_size; }

// "blk.12.ffn_down.weight" -> 12; -1 when the name has no layer.
int layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int layer = -1;
  const char *begin = name.data() + 4;
  const auto [end, ec] = std::from_chars(begin, name.data() + name.size(), layer);
  return ec == std::errc() && end != begin ? layer : -1;
}

// llama.cpp's choice of layers that get more bits: the first and last eighth, and every third
// layer in between.
bool use_more_bits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

GgmlType attn_v_type(uint32_t ftype, GgmlType type, const ModelShape &model, int layer) {
  switch (ftype) {
    case MOSTLY_Q2_K: return model.n_gqa >= 4 ? Q4_K : Q3_K;
    case MOSTLY_Q3_K_M: return layer < 2 ? Q5_K : Q4_K;
    case MOSTLY_Q4_K_M:
    case MOSTLY_Q5_K_M: return use_more_bits(layer, model.n_layers) ? Q6_K : type;
    case MOSTLY_Q4_K_S: return layer < 4 ? Q5_K : type;
    default: return type;
  }
}

GgmlType ffn_down_type(uint32_t ftype, GgmlType type, const ModelShape &model, int layer) {
  const int n = model.n_layers;
  switch (ftype) {
    case MOSTLY_Q2_K: return Q3_K;
    case MOSTLY_Q3_K_M: return layer < n / 16 ? Q5_K : Q4_K;
    case MOSTLY_Q4_K_M:
    case MOSTLY_Q5_K_M: return use_more_bits(layer, n) ? Q6_K : type;
    case MOSTLY_Q4_K_S: return layer < n / 8 ? Q5_K : type;
    default: return type;
  }
}

GgmlType attn_output_type(uint32_t ftype, GgmlType type) {
  switch (ftype) {
    case MOSTLY_Q2_K: return Q3_K;
    case MOSTLY_Q3_K_M: return Q4_K;
    default: return type;
  }
}

// A row that the type's blocks do not tile: llama.cpp falls back to IQ4_NL (for Q2_K/Q3_K),
// Q5_0 (Q4_K), Q5_1 (Q5_K), Q8_0 (Q6_K), which vramfit does not implement; we take Q4_0 for the
// first (the same 4.5 bits per weight) and Q8_0 for the others (at least as many bits).
GgmlType fall_back(GgmlType type, int64_t ne0) {
  if (ne0 % block_size(type) == 0) return type;
  const GgmlType fallback = (type == Q2_K || type == Q3_K || type == MXFP4) ? Q4_0 : Q8_0;
  return ne0 % block_size(fallback) == 0 ? fallback : F16;
}

}  // namespace

std::span<const Mix> mixes() noexcept { return kMixes; }

std::optional<Mix> find_mix(std::string_view name) noexcept {
  for (const Mix &mix : kMixes) {
    if (mix.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size(); ++i)
      same &= std::toupper(static_cast<unsigned char>(name[i])) == mix.name[i];
    if (same) return mix;
  }
  return std::nullopt;
}

bool is_quantizable(const TensorShape &tensor) noexcept {
  return ends_with(tensor.name, "weight") && tensor.n_dims >= 2 && !contains(tensor.name, "_norm.weight") &&
         !contains(tensor.name, "ffn_gate_inp.weight");
}

GgmlType tensor_type(const Mix &mix, const ModelShape &model, const TensorShape &tensor) noexcept {
  GgmlType type = mix.default_type;
  if (type == F32 || type == F16) return type;  // plain mixes have no per-tensor rules
  // llama.cpp's MXFP4_MOE: the experts (3-D tensors) MXFP4, every other matrix Q8_0.
  if (mix.file_type == MOSTLY_MXFP4_MOE) return fall_back(tensor.n_dims >= 3 ? MXFP4 : Q8_0, tensor.ne0);
  const std::string_view name = tensor.name;
  const int layer = layer_of(name);
  if (name == "output.weight" || (!model.has_output && name == "token_embd.weight")) {
    // The output projection decides the most; it gets Q6_K unless the mix is Q8_0.
    if (tensor.ne0 % block_size(type) != 0) type = Q8_0;
    else if (type != Q8_0) type = Q6_K;
  } else if (name == "token_embd.weight") {
    // the default type, for every mix vramfit writes
  } else if (contains(name, "attn_v.weight")) {
    type = attn_v_type(mix.file_type, type, model, layer);
    if (model.llama_70b && (type == Q3_K || type == Q4_K)) type = Q5_K;
  } else if (contains(name, "ffn_down")) {
    type = ffn_down_type(mix.file_type, type, model, layer);
  } else if (contains(name, "attn_output.weight")) {
    type = attn_output_type(mix.file_type, type);
  }
  return fall_back(type, tensor.ne0);
}

}  // namespace vramfit::quant
