// BPE pre-tokenizers: the regexes named by tokenizer.ggml.pre, hand-written over code points.
//
// llama.cpp applies a list of regexes in turn; each one splits every current piece of text into
// its matches and the gaps between them (std::regex_iterator over the piece). The gpt-2 and
// llama3 regexes have hand-written matchers there too (unicode_regex_split_custom_*), which we
// follow step by step; the gpt-4o one is a matcher that finds what std::regex's backtracking
// finds; the short regexes are small matchers run by split_by_matches().
// tests/tokenizer/test_pretokenize_regex.cpp checks every family against std::regex itself.
#include <algorithm>
#include <functional>
#include <iterator>

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

// The tail shared by the llama3 and gpt-4o regexes, \s*[\r\n]+|\s+(?!\S)|\s+ : the end of its
// match at pos (pos + 1 when pos is no whitespace, which only happens past every other branch).
size_t whitespace_end(const Piece &p, size_t pos) {
  size_t n = 0, last_newline_end = 0;
  while (p.whitespace(pos + n)) {
    const uint32_t w = p.cpt(pos + n);
    if (w == '\r' || w == '\n') last_newline_end = pos + n + 1;
    ++n;
  }
  if (last_newline_end > 0) return last_newline_end;  // \s*[\r\n]+
  if (n > 0) return whitespace_run_end(p, pos);
  return pos + 1;
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
    add(pos = whitespace_end(p, pos));
  }
}

// llama.cpp runs the gpt-4o (o200k) regex through std::regex over a "collapsed" text where
// every non-ASCII letter is one byte that both [^a-z] and [^A-Z] accept, and with \p{M} dropped
// from the letter classes (marks count as [^\s\p{L}\p{N}]). So "upper" is any letter but a-z and
// "lower" any letter but A-Z; the Lu/Ll/Lt/Lm/Lo split of the original regex never applies.
bool gpt4o_upper(const Piece &p, size_t pos) { return p.letter(pos) && !(p.cpt(pos) >= 'a' && p.cpt(pos) <= 'z'); }
bool gpt4o_lower(const Piece &p, size_t pos) { return p.letter(pos) && !(p.cpt(pos) >= 'A' && p.cpt(pos) <= 'Z'); }

// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])? : ASCII case only, unlike llama3's.
size_t gpt4o_contraction_end(const Piece &p, size_t pos) {
  auto at = [&](size_t i) {
    const uint32_t c = p.cpt(i);
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  };
  if (p.cpt(pos) != '\'') return pos;
  const uint32_t c1 = at(pos + 1), c2 = at(pos + 2);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
  return pos;
}

// The end of upper*lower+ at `start` as a backtracking engine finds it: the upper run gives
// back letters until a lower one can follow; 0 when none can.
size_t gpt4o_upper_then_lower(const Piece &p, size_t start) {
  size_t upper_end = start;
  while (gpt4o_upper(p, upper_end)) ++upper_end;
  size_t lower_start = upper_end;
  while (!gpt4o_lower(p, lower_start)) {
    if (lower_start == start) return 0;
    --lower_start;
  }
  size_t end = lower_start;
  while (gpt4o_lower(p, end)) ++end;
  return end;
}

// The end of the first two alternatives at `start` (a letter), the contraction included.
size_t gpt4o_letters_end(const Piece &p, size_t start) {
  size_t end = gpt4o_upper_then_lower(p, start);
  if (end == 0) {  // only [A-Z] here: the second alternative, [upper]+[lower]* with no lower
    end = start;
    while (gpt4o_upper(p, end)) ++end;
  }
  return gpt4o_contraction_end(p, end);
}

// [^\r\n\p{L}\p{N}]?[upper]*[lower]+(contraction)?|[^\r\n\p{L}\p{N}]?[upper]+[lower]*(contraction)?|
//  \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (llama.cpp's spelling: upper = (?=[\p{L}])[^a-z], lower = (?=[\p{L}])[^A-Z]).
void split_gpt4o_piece(const Piece &p, Pieces &out) {
  size_t prev_end = p.begin;
  auto add = [&](size_t end) {
    if (end > prev_end) out.push_back(end - prev_end);
    prev_end = end;
  };
  for (size_t pos = p.begin; pos < p.end;) {
    const uint32_t c = p.cpt(pos);
    const bool prefix = p.in(pos) && c != '\r' && c != '\n' && !p.letter(pos) && !p.number(pos);
    const size_t start = prefix ? pos + 1 : pos;
    if (p.letter(start)) {
      add(pos = gpt4o_letters_end(p, start));
      continue;
    }
    if (p.number(pos)) {
      const size_t group_end = pos + 3;
      while (pos < group_end && p.number(pos)) ++pos;
      add(pos);
      continue;
    }
    const size_t first = (c == ' ' && p.other(pos + 1)) ? pos + 1 : pos;
    if (p.other(first)) {
      pos = first;
      while (p.other(pos)) ++pos;
      while (p.cpt(pos) == '\r' || p.cpt(pos) == '\n' || p.cpt(pos) == '/') ++pos;
      add(pos);
      continue;
    }
    add(pos = whitespace_end(p, pos));
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

// deepseek-llm's letter class, spelled out as code point ranges in its regex (the cased letters
// of some Unicode version, not \p{L}): [A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷ...𞤀-𞥃].
struct Range {
  uint32_t first, last;
};
constexpr Range kDeepseekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。]; U+3000 never matches, llama.cpp turns non-ASCII spaces into \v first.
constexpr Range kDeepseekPunctuation[] = {{0x21, 0x2F},     {0x3A, 0x7E},     {0x2018, 0x201F},
                                          {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}};

template <size_t N>
bool in_ranges(const Range (&ranges)[N], uint32_t c) {
  const Range *it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                                     [](uint32_t x, const Range &r) { return x < r.first; });
  return it != std::begin(ranges) && c <= (it - 1)->last;
}
bool is_deepseek_letter(const Text &t, size_t i) { return in_ranges(kDeepseekLetters, t.cpts[i]); }
bool is_deepseek_punctuation(const Text &t, size_t i) {
  return !t.flags[i].whitespace && in_ranges(kDeepseekPunctuation, t.cpts[i]);
}

// \s+$ : each piece's trailing whitespace run (the only place that regex can match).
Pieces split_trailing_whitespace(const Text &t, const Pieces &pieces) {
  Pieces out;
  size_t start = 0;
  for (size_t length : pieces) {
    const size_t end = start + length;
    size_t run = end;
    while (run > start && t.flags[run - 1].whitespace) --run;
    if (run > start) out.push_back(run - start);
    if (end > run) out.push_back(end - run);
    start = end;
  }
  return out;
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
    case PreTokenizer::deepseek_llm:
      pieces = split_by_matches(t, pieces, newline);
      pieces = split_by_matches(t, pieces, optional_space_then(is_deepseek_letter));
      pieces = split_by_matches(t, pieces, optional_space_then(is_deepseek_punctuation));
      pieces = split_trailing_whitespace(t, pieces);
      pieces = split_by_matches(t, pieces, one_or_more(is_cjk_or_hangul));
      return split_by_matches(t, pieces, one_or_more(is_number));
    case PreTokenizer::gpt4o:
      return split_each(t, pieces, split_gpt4o_piece);
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
