// Splits jinja source into text and the tokens inside {{ }} and {% %} tags, applying whitespace
// control as transformers' environment has it: trim_blocks (the first newline after a block or
// comment tag is removed), lstrip_blocks (spaces and tabs before a block or comment tag at the
// start of a line are removed), and `-` on a tag side (all whitespace on that side is removed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vramfit::chat {

struct Token {
  enum class Type { text, var_begin, var_end, block_begin, block_end, name, string, integer, number, op, end };
  Type type;
  std::string text;  // text, name, string contents (unescaped), operator
  int64_t integer = 0;
  double number = 0;
  int line = 1;
};

// Throws Error(format) naming the line for an unclosed tag, comment or string.
std::vector<Token> lex_template(std::string_view source);

}  // namespace vramfit::chat
