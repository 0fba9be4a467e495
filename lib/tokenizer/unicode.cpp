#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <array>

namespace vramfit::tokenizer {

size_t utf8_sequence_length(uint8_t lead) noexcept {
  static constexpr uint8_t lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lengths[lead >> 4];
}

namespace {

bool is_continuation(std::string_view text, size_t i) {
  return i < text.size() && (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80;
}

// One code point at `offset`; returns its length in bytes, 0 when the bytes are malformed.
size_t decode_one(std::string_view text, size_t offset, uint32_t &codepoint) {
  const uint8_t b0 = static_cast<uint8_t>(text[offset]);
  auto cont = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(text[offset + k]) & 0x3F); };
  if (!(b0 & 0x80)) {
    codepoint = b0;
    return 1;
  }
  if (!(b0 & 0x40)) return 0;  // a continuation byte cannot start a sequence
  if (!(b0 & 0x20)) {
    if (!is_continuation(text, offset + 1)) return 0;
    codepoint = ((b0 & 0x1Fu) << 6) | cont(1);
    return 2;
  }
  if (!(b0 & 0x10)) {
    if (!is_continuation(text, offset + 1) || !is_continuation(text, offset + 2)) return 0;
    codepoint = ((b0 & 0x0Fu) << 12) | (cont(1) << 6) | cont(2);
    return 3;
  }
  if (!(b0 & 0x08)) {
    if (!is_continuation(text, offset + 1) || !is_continuation(text, offset + 2) ||
        !is_continuation(text, offset + 3))
      return 0;
    codepoint = ((b0 & 0x07u) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    return 4;
  }
  return 0;
}

}  // namespace

size_t utf8_decode(std::string_view text, size_t offset, uint32_t &codepoint) noexcept {
  const size_t length = decode_one(text, offset, codepoint);
  // Beyond U+10FFFF cannot be re-encoded; llama.cpp would throw there, we substitute.
  if (length == 0 || codepoint > 0x10FFFF) {
    codepoint = replacement_char;
    return length == 0 ? 1 : length;
  }
  return length;
}

std::vector<uint32_t> utf8_to_codepoints(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    uint32_t codepoint = 0;
    offset += utf8_decode(text, offset, codepoint);
    out.push_back(codepoint);
  }
  return out;
}


std::string codepoint_to_utf8(uint32_t codepoint) {
  std::string out;
  append_utf8(out, codepoint);
  return out;
}

bool is_whitespace(uint32_t cp) noexcept {
  // PropList.txt White_Space, the list llama.cpp uses.
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return false;
  }
}

CodepointFlags codepoint_flags(uint32_t cp) noexcept {
  CodepointFlags flags;
  flags.whitespace = is_whitespace(cp);
  if (cp > 0x10FFFF) return flags;
  const CategoryRun *begin = tables::category_runs;
  const CategoryRun *end = begin + tables::n_category_runs;
  const CategoryRun *run = std::upper_bound(begin, end, cp, [](uint32_t c, const CategoryRun &r) { return c < r.first; }) - 1;
  flags.category = static_cast<Category>(run->category);
  return flags;
}

uint32_t to_lower(uint32_t cp) noexcept {
  const CodepointPair *begin = tables::lowercase;
  const CodepointPair *end = begin + tables::n_lowercase;
  const CodepointPair *it = std::lower_bound(begin, end, cp, [](const CodepointPair &p, uint32_t c) { return p.from < c; });
  return (it != end && it->from == cp) ? it->to : cp;
}

uint32_t nfd_base(uint32_t cp) noexcept {
  const NfdRange *begin = tables::nfd_base;
  const NfdRange *end = begin + tables::n_nfd_base;
  const NfdRange *it = std::upper_bound(begin, end, cp, [](uint32_t c, const NfdRange &r) { return c < r.first; });
  if (it == begin) return cp;
  --it;
  return (cp >= it->first && cp <= it->last) ? it->base : cp;
}

namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes
// map to U+0100.. in byte order. Built at compile time: token_to_piece runs it on every code point
// of a 200k-token vocabulary when it loads.
constexpr bool printable_byte(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

struct ByteMap {
  std::array<uint16_t, 256> byte_to_codepoint{};
  std::array<int16_t, 324> codepoint_to_byte{};  // every mapped code point is < 256 + 68
  constexpr ByteMap() {
    for (int16_t &b : codepoint_to_byte) b = -1;
    uint16_t next_extra = 256;
    for (uint16_t b = 0; b < 256; ++b) {
      const uint16_t cp = printable_byte(b) ? b : next_extra++;
      byte_to_codepoint[b] = cp;
      codepoint_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};
constexpr ByteMap kByteMap;

struct ByteStrings {
  std::array<std::string, 256> utf8;
  ByteStrings() {
    for (size_t b = 0; b < 256; ++b) utf8[b] = codepoint_to_utf8(kByteMap.byte_to_codepoint[b]);
  }
};

}  // namespace

const std::string &byte_to_unicode(uint8_t byte) noexcept {
  static const ByteStrings strings;
  return strings.utf8[byte];
}

int unicode_to_byte(uint32_t cp) noexcept {
  return cp < kByteMap.codepoint_to_byte.size() ? kByteMap.codepoint_to_byte[cp] : -1;
}

}  // namespace vramfit::tokenizer
