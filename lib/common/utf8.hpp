// UTF-8: encoding a code point (the tokenizer, the chat templates) and making text from a file
// valid before it reaches output (JSON, error messages), since GGUF strings are not checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vramfit::detail {

// Appends the UTF-8 bytes of `cp`; a value past U+10FFFF becomes U+FFFD.
inline void append_utf8(std::string &out, uint32_t cp) {
  if (cp > 0x10FFFF) cp = 0xFFFD;  // no such code point
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The length of the well-formed UTF-8 sequence at text[pos] (1-4; Unicode's table 3-7: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0 when none starts there.
inline size_t utf8_sequence_length(std::string_view text, size_t pos) noexcept {
  const auto byte = [&](size_t i) { return pos + i < text.size() ? static_cast<uint8_t>(text[pos + i]) : 0u; };
  const auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) { return byte(i) >= lo && byte(i) <= hi; };
  if (pos >= text.size()) return 0;
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// `text` with each byte that starts no well-formed sequence replaced by U+FFFD (as the BPE
// tokenizer reads such bytes); valid text comes back unchanged.
inline std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (const size_t n = utf8_sequence_length(text, pos)) {
      out.append(text, pos, n);
      pos += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++pos;
    }
  }
  return out;
}

}  // namespace vramfit::detail
