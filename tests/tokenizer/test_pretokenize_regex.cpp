// Every hand-written pre-tokenizer against llama.cpp's own method (unicode_regex_split): each
// regex of the family in turn, through std::regex over a "collapsed" text when it names a \p{..}
// category (one byte per code point: ASCII as is, non-ASCII whitespace as \v, any other code point
// as a byte per category, which \p{L} / \p{N} / \p{P} in the regex are rewritten to), else through
// std::wregex over the code points. libstdc++'s std::regex is the engine llama.cpp uses on Linux,
// so the two must split alike. (llama.cpp has hand-written matchers for the gpt-2 and llama3
// regexes; they agree with the regexes, as this test shows for ours.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "offload/regex.hpp"  // <regex> without GCC 12's false warnings under the sanitizers
#include "test_data.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

using namespace vramfit::tokenizer;

namespace {

using Offsets = std::vector<size_t>;

// llama.cpp's unicode_regex_split_stl: each piece splits into its matches and the gaps between.
template <class CharT>
Offsets split_stl(const std::basic_string<CharT> &text, const std::basic_regex<CharT> &expr, const Offsets &pieces) {
  Offsets out;
  size_t start = 0;
  for (size_t length : pieces) {
    using Iterator = std::regex_iterator<const CharT *>;
    size_t gap_start = 0;
    for (Iterator it(text.data() + start, text.data() + start + length, expr), end; it != end; ++it) {
      const size_t position = static_cast<size_t>(it->position()), n = static_cast<size_t>(it->length());
      if (position > gap_start) out.push_back(position - gap_start);
      out.push_back(n);
      gap_start = position + n;
    }
    if (length > gap_start) out.push_back(length - gap_start);
    start += length;
  }
  return out;
}

char collapsed(uint32_t cpt) {
  if (cpt < 128) return static_cast<char>(cpt);
  const CodepointFlags flags = codepoint_flags(cpt);
  if (flags.whitespace) return 0x0B;
  switch (flags.category) {
    case Category::number: return static_cast<char>(0xD1);
    case Category::letter: return static_cast<char>(0xD2);
    case Category::punctuation: return static_cast<char>(0xD3);
    case Category::accent_mark: return static_cast<char>(0xD4);
    case Category::symbol: return static_cast<char>(0xD5);
    default: return static_cast<char>(0xD0);
  }
}

std::string collapsed_text(const std::vector<uint32_t> &cpts) {
  std::string out;
  for (uint32_t c : cpts) out += collapsed(c);
  return out;
}

// \p{L} -> [\xD2A-Za-z], \p{N} -> [\xD10-9], \p{P} -> [\xD3 + ASCII punctuation] (no extra brackets
// inside a class), as llama.cpp rewrites them for the collapsed text.
std::string collapsed_regex(const std::string &regex) {
  static const std::pair<std::string, std::string> categories[] = {
      {"\\p{L}", "\xD2\x41-\x5A\x61-\x7A"},
      {"\\p{N}", "\xD1\x30-\x39"},
      {"\\p{P}", "\xD3\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\\\x5B-\\\x5D\x5F\\\x7B\\\x7D"}};
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    const bool escaped = i > 0 && regex[i - 1] == '\\';
    if (regex[i] == '[' && !escaped) inside = true;
    if (regex[i] == ']' && !escaped) inside = false;
    const auto category = std::find_if(std::begin(categories), std::end(categories),
                                       [&](const auto &c) { return regex.compare(i, 5, c.first) == 0; });
    if (category == std::end(categories)) {
      out += regex[i];
      continue;
    }
    out += (inside ? "" : "[") + category->second + (inside ? "" : "]");
    i += 4;
  }
  return out;
}

std::wstring wide_text(const std::vector<uint32_t> &cpts) {
  std::wstring out(cpts.begin(), cpts.end());
  for (wchar_t &c : out)  // std::wregex's \s knows no non-ASCII space: llama.cpp writes \v for them
    if (c > 0x7F && codepoint_flags(static_cast<uint32_t>(c)).whitespace) c = 0x0B;
  return out;
}

std::vector<std::string> words(const std::vector<uint32_t> &cpts, const Offsets &offsets) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t length : offsets) {
    std::string &word = out.emplace_back();
    for (size_t i = start; i < start + length; ++i) append_utf8(word, cpts[i]);
    start += length;
  }
  return out;
}

// One regex as llama.cpp runs it: on the collapsed text when it names a category, else wide.
struct Regex {
  bool collapsed;
  std::regex narrow;
  std::wregex wide;
  explicit Regex(const std::string &r) : collapsed(r.find("\\p{") != std::string::npos) {
    if (collapsed) {
      narrow = std::regex(collapsed_regex(r));
    } else {
      const std::vector<uint32_t> cpts = utf8_to_codepoints(r);
      wide = std::wregex(std::wstring(cpts.begin(), cpts.end()));
    }
  }
};

struct Family {
  PreTokenizer pre;
  const char *name;
  std::vector<Regex> regexes;
};

std::vector<std::string> reference_split(const Family &family, const std::string &text) {
  const std::vector<uint32_t> cpts = utf8_to_codepoints(text);
  if (cpts.empty()) return {};
  const std::string narrow = collapsed_text(cpts);
  const std::wstring wide = wide_text(cpts);
  Offsets offsets{cpts.size()};
  for (const Regex &r : family.regexes)
    offsets = r.collapsed ? split_stl(narrow, r.narrow, offsets) : split_stl(wide, r.wide, offsets);
  return words(cpts, offsets);
}

// The regexes of llama-vocab.cpp (llm_tokenizer_bpe), family by family.
const std::string kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL]"
    "[lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV]"
    "[eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const std::string kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const std::string kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const std::string kCjk = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+";
// deepseek-llm's letters and punctuation, its literal characters written as escapes.
const std::string kDeepseekLetters =
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF"
    "\u0370-\u0373\u0376-\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5"
    "\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF"
    "\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57"
    "\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3"
    "\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124"
    "\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183-\u2184\u2C00-\u2C7B"
    "\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2-\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E"
    "\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F"
    "\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2"
    "\U000118A0-\U000118DF\U0001E900-\U0001E943]+";
const std::string kDeepseekPunctuation = "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+";

std::vector<Family> families() {
  auto family = [](PreTokenizer pre, const char *name, std::initializer_list<std::string> regexes) {
    return Family{pre, name, std::vector<Regex>(regexes.begin(), regexes.end())};
  };
  return {
      family(PreTokenizer::gpt4o, "gpt-4o", {kGpt4o}),
      family(PreTokenizer::llama3, "llama3", {kLlama3}),
      family(PreTokenizer::qwen2, "qwen2", {kQwen2}),
      family(PreTokenizer::deepseek_llm, "deepseek-llm",
             {"[\r\n]", kDeepseekLetters, kDeepseekPunctuation, "\\s+$", kCjk, "\\p{N}+"}),
      family(PreTokenizer::deepseek_coder, "deepseek-coder",
             {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kCjk, "\\p{N}"}),
      family(PreTokenizer::gpt2, "gpt-2", {kGpt2}),
      family(PreTokenizer::starcoder, "starcoder", {"\\p{N}", kGpt2}),
      family(PreTokenizer::falcon, "falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}),
      family(PreTokenizer::default_, "default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}),
  };
}

std::vector<std::string> test_strings(const std::string &relative) {
  std::vector<std::string> out;
  auto path = vramfit::test::test_data(relative);
  if (!path) return out;
  std::ifstream in(*path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  const std::string raw = s.str(), sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = std::min(raw.find(sep, pos), raw.size());
    out.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// Random strings over pieces that stress both regexes: case changes, contractions, marks,
// non-ASCII letters / digits / spaces, the characters of deepseek-llm's explicit classes.
std::vector<std::string> random_strings(size_t count) {
  const std::string pieces[] = {"a", "Z", "7", " ", "  ", "\n", "\r\n", "\r", "\t", "'s", "'LL", "'", "!", ",", "$", "/",
                                "\xC3\xA9", "\xC3\x89", "\xE4\xB8\xAD", "\xF0\x9F\xA6\x99", "\xE2\x80\x83", "\xC2\xA0",
                                "\xFF", "\xE2\x82", "\xCC\x81", "\xD9\xA3", "\xE0\xA4\x95", "\xE0\xA4\xBF", "\xC2\xB2",
                                "\xE3\x80\x80", "\xEF\xBC\x81", "\xE2\x80\x98", "\xCE\xA9", "\xE2\x84\xA6", "\xC2\xB5",
                                "ABC", "abc", "\x0B", std::string(1, '\0'), "\xE1\xBE\xBE", "\xF0\x9D\x90\x80",
                                "\xEA\xA5\xA0", "K", "\xE2\x84\xAA", "\xE1\x83\x90"};
  uint64_t state = 0x2545F4914F6CDD1Dull;  // fixed seed: the same strings on every run
  auto next = [&] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  std::vector<std::string> out(count);
  for (std::string &s : out)
    for (size_t n = next() % 12; n > 0; --n) s += pieces[next() % std::size(pieces)];
  return out;
}

std::vector<std::string> all_inputs() {
  std::vector<std::string> inputs = random_strings(3000);
  for (const char *file : {"vocab/ggml-vocab-hard.inp", "vocab/ggml-vocab-gpt-oss.gguf.inp",
                           "vocab/ggml-vocab-deepseek-llm.gguf.inp"})
    for (std::string &s : test_strings(file)) inputs.push_back(std::move(s));
  return inputs;
}

}  // namespace

TEST_CASE("every pre-tokenizer splits exactly as llama.cpp's regexes do under std::regex") {
  const std::vector<std::string> inputs = all_inputs();
  CHECK(inputs.size() >= 3000);
  for (const Family &family : families()) {
    size_t matching = 0;
    for (const std::string &text : inputs) {
      const std::vector<std::string> got = pretokenize(family.pre, text), expected = reference_split(family, text);
      if (got == expected) {
        ++matching;
      } else {
        FAIL_CHECK(std::string(family.name) << ": '" << text << "' splits into " << got.size() << " words, llama.cpp "
                               << expected.size());
      }
    }
    MESSAGE(std::string(family.name) << ": " << matching << "/" << inputs.size() << " inputs split alike");
  }
}
