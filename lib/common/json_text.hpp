// Text as a JSON string literal, for output built by hand (Plan::to_json).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "common/utf8.hpp"

namespace vramfit::detail {

// Quotes, backslashes and control characters escaped; each byte that starts no well-formed UTF-8
// sequence written as \ufffd. GGUF strings (keys, tensor names) are not checked for UTF-8 when
// read, so this keeps the output JSON whatever the file holds.
inline std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (size_t pos = 0; pos < text.size();) {
    const char c = text[pos];
    const size_t n = utf8_sequence_length(text, pos);
    if (n == 0) {
      out += "\\ufffd";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out.append(text, pos, n);
    }
    pos += n == 0 ? 1 : n;
  }
  return out + '"';
}

}  // namespace vramfit::detail
