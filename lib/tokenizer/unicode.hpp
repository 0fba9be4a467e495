// Unicode helpers for the tokenizers: UTF-8 decoding the way llama.cpp does it, code point
// categories (generated tables), lower case, the NFD base letter, and GPT-2's byte <-> unicode map.
#pragma once

#include "common/utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vramfit::tokenizer {

// General categories collapsed to what the pre-tokenizers test. Numbers are fixed: the
// generated tables (scripts/gen_unicode_tables.py) use them.
enum class Category : uint8_t {
  undefined = 0, letter = 1, number = 2, punctuation = 3, accent_mark = 4, symbol = 5,
  separator = 6, control = 7,
};

struct CategoryRun { uint32_t first; uint8_t category; };  // category holds from `first` on
struct CodepointPair { uint32_t from; uint32_t to; };
struct NfdRange { uint32_t first; uint32_t last; uint32_t base; };

namespace tables {
extern const CategoryRun category_runs[];
extern const size_t n_category_runs;
extern const CodepointPair lowercase[];
extern const size_t n_lowercase;
extern const NfdRange nfd_base[];
extern const size_t n_nfd_base;
}  // namespace tables

constexpr uint32_t replacement_char = 0xFFFD;

// What a pre-tokenizer needs to know about one code point.
struct CodepointFlags {
  Category category = Category::undefined;
  bool whitespace = false;
  bool letter() const noexcept { return category == Category::letter && !whitespace; }
  bool number() const noexcept { return category == Category::number && !whitespace; }
  bool punctuation() const noexcept { return category == Category::punctuation && !whitespace; }
  bool symbol() const noexcept { return category == Category::symbol && !whitespace; }
  bool control() const noexcept { return category == Category::control; }
};

// Length of the UTF-8 sequence a lead byte announces (1 for continuation bytes), like
// llama.cpp's unicode_len_utf8.
size_t utf8_sequence_length(uint8_t lead) noexcept;
// Decodes UTF-8; a byte that does not start a well-formed sequence becomes one U+FFFD (and
// decoding goes on at the next byte), exactly as llama.cpp does. Never throws.
std::vector<uint32_t> utf8_to_codepoints(std::string_view text);
// One code point of the above at `offset` (< text.size()); returns the bytes it took (>= 1).
size_t utf8_decode(std::string_view text, size_t offset, uint32_t &codepoint) noexcept;
using detail::append_utf8;
std::string codepoint_to_utf8(uint32_t codepoint);

CodepointFlags codepoint_flags(uint32_t codepoint) noexcept;
bool is_whitespace(uint32_t codepoint) noexcept;
uint32_t to_lower(uint32_t codepoint) noexcept;
uint32_t nfd_base(uint32_t codepoint) noexcept;  // first code point of its NFD decomposition

// GPT-2 byte-level BPE: each byte is written as a printable code point (UTF-8 encoded here).
const std::string &byte_to_unicode(uint8_t byte) noexcept;
int unicode_to_byte(uint32_t codepoint) noexcept;  // -1 when the code point stands for no byte

}  // namespace vramfit::tokenizer
