// BPE pre-tokenizers: the regexes named by tokenizer.ggml.pre, hand-written over code points.
//
// llama.cpp applies a list of regexes in turn; each one splits every current piece of text into
// its matches and the gaps between them (std::regex_iterator over the piece). The gpt-2 and
// llama3 regexes have hand-written matchers there too (unicode_regex_split_custom_*), which we
// follow step by step; the short regexes are small matchers run by split_by_matches().
#include <functional>

#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace vramfit::tokenizer {
namespace {

// The text as code points with their flags; pieces are lengths in code points.
struct Text {
  std::vector<uint32_t> cpts;
  std::vector<CodepointFlags> flags;
};
using Pieces = std::vector<size_t>;

// A matcher returns the length of the match starting at pos (0: none) within [pos, end).
using Matcher = std::function<size_t(const Text &, size_t pos, size_t end)>;

Pieces split_by_matches(const Text &t, const Pieces &pieces, const Matcher &match) {
  Pieces out;
  size_t start = 0;
  for (size_t length : pieces) {
    const size_t end = start + length;
    size_t gap_start = start;
    for (size_t pos = start; pos < end;) {
      const size_t n = match(t, pos, end);
      if (n == 0) {
        ++pos;
        continue;
      }
      if (pos > gap_start) out.push_back(pos - gap_start);
      out.push_back(n);
      pos += n;
      gap_start = pos;
    }
    if (end > gap_start) out.push_back(end - gap_start);
    start = end;
  }
  return out;
}

// Cursor over one piece: flags past its end read as "nothing" (no flag set), as in llama.cpp.
struct Piece {
  const Text &t;
  size_t begin, end;
  static constexpr uint32_t out_of_range = 0xFFFFFFFF;
  uint32_t cpt(size_t pos) const { return pos >= begin && pos < end ? t.cpts[pos] : out_of_range; }
  bool in(size_t pos) const { return pos >= begin && pos < end; }
  bool letter(size_t pos) const { return in(pos) && t.flags[pos].letter(); }
  bool number(size_t pos) const { return in(pos) && t.flags[pos].number(); }
  bool whitespace(size_t pos) const { return in(pos) && t.flags[pos].whitespace; }
  // [^\s\p{L}\p{N}]: anything else, but only inside the piece.
  bool other(size_t pos) const { return in(pos) && !whitespace(pos) && !letter(pos) && !number(pos); }
};

template <class SplitPiece>
Pieces split_each(const Text &t, const Pieces &pieces, SplitPiece split_piece) {
  Pieces out;
  size_t start = 0;
  for (size_t length : pieces) {
    split_piece(Piece{t, start, start + length}, out);
    start += length;
  }
  return out;
}

// 's|'t|'re|'ve|'m|'ll|'d at pos (case-insensitive for llama3): the length of the match, or 0.
size_t contraction_length(const Piece &p, size_t pos, bool ignore_case) {
  auto at = [&](size_t i) { return ignore_case ? to_lower(p.cpt(i)) : p.cpt(i); };
  if (p.cpt(pos) != '\'' || pos + 1 >= p.end) return 0;
  const uint32_t c1 = at(pos + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= p.end) return 0;
  const uint32_t c2 = at(pos + 2);
  return (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l') ? 3 : 0;
}

// Whitespace run handling shared by gpt2 and llama3: \s+(?!\S) keeps the last space for the next
// word when more text follows; otherwise \s+ takes the run.
size_t whitespace_run_end(const Piece &p, size_t pos) {
  size_t n = 0;
  while (p.whitespace(pos + n)) ++n;
  if (n > 1 && p.cpt(pos + n) != Piece::out_of_range) return pos + n - 1;
  return pos + n;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
void split_gpt2_piece(const Piece &p, Pieces &out) {
  size_t prev_end = p.begin;
  auto add = [&](size_t end) {
    if (end > prev_end) out.push_back(end - prev_end);
    prev_end = end;
  };
  for (size_t pos = p.begin; pos < p.end;) {
    if (const size_t n = contraction_length(p, pos, /*ignore_case=*/false)) {
      add(pos += n);
      continue;
    }
    const uint32_t c = p.cpt(pos);
    const size_t first = (c == ' ') ? pos + 1 : pos;  // the optional leading space
    if (p.letter(first) || p.number(first) || p.other(first)) {
      const bool letter = p.letter(first), number = p.number(first);
      pos = first;
      while (letter ? p.letter(pos) : number ? p.number(pos) : p.other(pos)) ++pos;
      add(pos);
      continue;
    }
    if (p.whitespace(pos)) {
      add(pos = whitespace_run_end(p, pos));
      continue;
    }
    add(++pos);
  }
}


// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3_piece(const Piece &p, size_t max_digits, Pieces &out) {
  size_t prev_end = p.begin;
  auto add = [&](size_t end) {
    if (end > prev_end) out.push_back(end - prev_end);
    prev_end = end;
  };
  for (size_t pos = p.begin; pos < p.end;) {
    if (const size_t n = contraction_length(p, pos, /*ignore_case=*/true)) {
      add(pos += n);
      continue;
    }
    const uint32_t c = p.cpt(pos);
    if (c != '\r' && c != '\n' && !p.number(pos) && (p.letter(pos) || p.letter(pos + 1))) {
      ++pos;  // one leading non-letter (or the first letter)
      while (p.letter(pos)) ++pos;
      add(pos);
      continue;
    }
    if (p.number(pos)) {
      size_t group_start = pos;
      while (p.number(pos)) {
        if (++pos - group_start >= max_digits) {
          add(pos);
          group_start = pos;
        }
      }
      add(pos);
      continue;
    }
    const size_t first = (c == ' ') ? pos + 1 : pos;
    if (p.other(first)) {
      pos = first;
      while (p.other(pos)) ++pos;
      while (p.cpt(pos) == '\r' || p.cpt(pos) == '\n') ++pos;
      add(pos);
      continue;
    }
    size_t n = 0, last_newline_end = 0;
    while (p.whitespace(pos + n)) {
      const uint32_t w = p.cpt(pos + n);
      if (w == '\r' || w == '\n') last_newline_end = pos + n + 1;
      ++n;
    }
    if (last_newline_end > 0) {  // \s*[\r\n]+
      add(pos = last_newline_end);
      continue;
    }
    if (n > 0) {
      add(pos = whitespace_run_end(p, pos));
      continue;
    }
    add(++pos);
  }
}

// ---- the short regexes, as matchers ----

template <class Class>
size_t run_of(const Text &t, size_t pos, size_t end, Class in_class) {
  size_t n = 0;
  while (pos + n < end && in_class(t, pos + n)) ++n;
  return n;
}

bool is_letter(const Text &t, size_t i) { return t.flags[i].letter(); }
bool is_number(const Text &t, size_t i) { return t.flags[i].number(); }
bool is_punctuation(const Text &t, size_t i) { return t.flags[i].punctuation(); }

// \s?<class>+
Matcher optional_space_then(bool (*in_class)(const Text &, size_t)) {
  return [in_class](const Text &t, size_t pos, size_t end) -> size_t {
    if (t.flags[pos].whitespace) {
      if (pos + 1 < end && in_class(t, pos + 1)) return 1 + run_of(t, pos + 1, end, in_class);
      return 0;
    }
    return run_of(t, pos, end, in_class);
  };
}

Matcher one_or_more(bool (*in_class)(const Text &, size_t)) {
  return [in_class](const Text &t, size_t pos, size_t end) { return run_of(t, pos, end, in_class); };
}

Matcher exactly_one(bool (*in_class)(const Text &, size_t)) {
  return [in_class](const Text &t, size_t pos, size_t) -> size_t { return in_class(t, pos) ? 1 : 0; };
}

// [\r\n]
size_t newline(const Text &t, size_t pos, size_t) { return t.cpts[pos] == '\r' || t.cpts[pos] == '\n'; }

// [0-9][0-9][0-9]
size_t three_ascii_digits(const Text &t, size_t pos, size_t end) {
  if (pos + 3 > end) return 0;
  for (size_t i = pos; i < pos + 3; ++i)
    if (t.cpts[i] < '0' || t.cpts[i] > '9') return 0;
  return 3;
}

// [一-龥ࠀ-一가-퟿]+ (llama.cpp replaces non-ASCII whitespace before this regex sees it)
bool is_cjk_or_hangul(const Text &t, size_t i) {
  const uint32_t c = t.cpts[i];
  if (t.flags[i].whitespace) return false;
  return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) || (c >= 0xAC00 && c <= 0xD7FF);
}

// [\p{P}\$\+<=>\^~\|] (falcon adds the backtick)
bool is_punctuation_or_math(const Text &t, size_t i) {
  const uint32_t c = t.cpts[i];
  return t.flags[i].punctuation() || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' ||
         c == '~' || c == '|';
}
bool is_punctuation_or_math_or_backtick(const Text &t, size_t i) {
  return t.cpts[i] == '`' || is_punctuation_or_math(t, i);
}

Pieces split_gpt2(const Text &t, const Pieces &pieces) { return split_each(t, pieces, split_gpt2_piece); }

Pieces split_llama3(const Text &t, const Pieces &pieces, size_t max_digits) {
  return split_each(t, pieces, [&](const Piece &p, Pieces &out) { split_llama3_piece(p, max_digits, out); });
}

Pieces split(PreTokenizer pre, const Text &t) {
  Pieces pieces{t.cpts.size()};
  switch (pre) {
    case PreTokenizer::gpt2:
      return split_gpt2(t, pieces);
    case PreTokenizer::llama3:
      return split_llama3(t, pieces, 3);
    case PreTokenizer::qwen2:
      return split_llama3(t, pieces, 1);
    case PreTokenizer::starcoder:
      pieces = split_by_matches(t, pieces, exactly_one(is_number));
      return split_gpt2(t, pieces);
    case PreTokenizer::deepseek_coder:
      pieces = split_by_matches(t, pieces, newline);
      pieces = split_by_matches(t, pieces, optional_space_then(is_letter));
      pieces = split_by_matches(t, pieces, optional_space_then(is_punctuation));
      pieces = split_by_matches(t, pieces, one_or_more(is_cjk_or_hangul));
      return split_by_matches(t, pieces, exactly_one(is_number));
    case PreTokenizer::falcon:
      pieces = split_by_matches(t, pieces, one_or_more(is_punctuation_or_math_or_backtick));
      pieces = split_gpt2(t, pieces);
      return split_by_matches(t, pieces, three_ascii_digits);
    case PreTokenizer::default_:
      pieces = split_by_matches(t, pieces, one_or_more(is_punctuation_or_math));
      pieces = split_gpt2(t, pieces);
      pieces = split_by_matches(t, pieces, one_or_more(is_number));
      return split_by_matches(t, pieces, three_ascii_digits);
  }
  return pieces;
}

}  // namespace

std::vector<std::string> pretokenize(PreTokenizer pre, std::string_view text) {
  Text t;
  t.cpts = utf8_to_codepoints(text);
  t.flags.reserve(t.cpts.size());
  for (uint32_t c : t.cpts) t.flags.push_back(codepoint_flags(c));

  std::vector<std::string> words;
  size_t start = 0;
  for (size_t length : split(pre, t)) {
    std::string &word = words.emplace_back();
    for (size_t i = start; i < start + length; ++i) append_utf8(word, t.cpts[i]);
    start += length;
  }
  return words;
}

}  // namespace vramfit::tokenizer
