#include <array>
#include <cctype>

#include "vramfit/types.hpp"

#include "common/json_text.hpp"

namespace vramfit {
namespace {

struct Row {
  uint32_t id;
  TypeTraits traits;
};

// ggml's table of block geometry (ggml.c type_traits), by on-disk id.
constexpr std::array kTypes = {
    Row{0, {"F32", 1, 4}},         Row{1, {"F16", 1, 2}},         Row{2, {"Q4_0", 32, 18}},
    Row{3, {"Q4_1", 32, 20}},      Row{6, {"Q5_0", 32, 22}},      Row{7, {"Q5_1", 32, 24}},
    Row{8, {"Q8_0", 32, 34}},      Row{9, {"Q8_1", 32, 36}},      Row{10, {"Q2_K", 256, 84}},
    Row{11, {"Q3_K", 256, 110}},   Row{12, {"Q4_K", 256, 144}},   Row{13, {"Q5_K", 256, 176}},
    Row{14, {"Q6_K", 256, 210}},   Row{15, {"Q8_K", 256, 292}},   Row{16, {"IQ2_XXS", 256, 66}},
    Row{17, {"IQ2_XS", 256, 74}},  Row{18, {"IQ3_XXS", 256, 98}}, Row{19, {"IQ1_S", 256, 50}},
    Row{20, {"IQ4_NL", 32, 18}},   Row{21, {"IQ3_S", 256, 110}},  Row{22, {"IQ2_S", 256, 82}},
    Row{23, {"IQ4_XS", 256, 136}}, Row{24, {"I8", 1, 1}},         Row{25, {"I16", 1, 2}},
    Row{26, {"I32", 1, 4}},        Row{27, {"I64", 1, 8}},        Row{28, {"F64", 1, 8}},
    Row{29, {"IQ1_M", 256, 56}},   Row{30, {"BF16", 1, 2}},       Row{34, {"TQ1_0", 256, 54}},
    Row{35, {"TQ2_0", 256, 66}},   Row{39, {"MXFP4", 32, 17}},
};

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t type_id) noexcept {
  for (const Row &row : kTypes)
    if (row.id == type_id) return row.traits;
  return std::nullopt;
}

std::string_view type_name(GgmlType type) noexcept {
  auto traits = type_traits(static_cast<uint32_t>(type));
  return traits ? traits->name : std::string_view("unknown");
}

std::optional<GgmlType> type_from_name(std::string_view name) noexcept {
  for (const Row &row : kTypes)
    if (iequal(row.traits.name, name)) return static_cast<GgmlType>(row.id);
  return std::nullopt;
}

uint64_t row_bytes(GgmlType type, int64_t n) noexcept {
  auto traits = type_traits(static_cast<uint32_t>(type));
  if (!traits || n < 0) return 0;
  return static_cast<uint64_t>(n) / traits->block_size * traits->type_size;
}

bool is_supported_for_compute(GgmlType type) noexcept {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0:
    case GgmlType::Q8_0: case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K:
    case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::Q8_K: case GgmlType::MXFP4:
      return true;
    default:
      return false;
  }
}

std::string json_quote(std::string_view text) { return detail::json_quote(text); }

}  // namespace vramfit
