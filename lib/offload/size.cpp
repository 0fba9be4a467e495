#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

#include "vramfit/offload.hpp"

namespace vramfit {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Bytes per unit; 0 for an unknown unit. "" and "b" are bytes.
uint64_t unit_scale(std::string_view unit) {
  std::string u(unit);
  for (char &c : u) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.empty() || u == "b") return 1;
  if (u == "k" || u == "kb") return 1000;
  if (u == "m" || u == "mb") return 1'000'000;
  if (u == "g" || u == "gb") return 1'000'000'000;
  if (u == "t" || u == "tb") return 1'000'000'000'000;
  if (u == "kib") return 1ull << 10;
  if (u == "mib") return 1ull << 20;
  if (u == "gib") return 1ull << 30;
  if (u == "tib") return 1ull << 40;
  return 0;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  text = trim(text);
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  const std::string_view number = text.substr(0, digits);
  const uint64_t scale = unit_scale(trim(text.substr(digits)));
  if (number.empty() || scale == 0) return std::nullopt;
  if (number.find('.') == std::string_view::npos) {  // whole: exact, even above 2^53
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
    if (value > UINT64_MAX / scale) return std::nullopt;
    return value * scale;
  }
  // A fraction needs a unit: "11.5" bytes is no size (and almost surely a forgotten "GiB").
  if (scale == 1) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  const double bytes = std::round(value * static_cast<double>(scale));
  if (!(bytes >= 0) || bytes > 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

}  // namespace vramfit
