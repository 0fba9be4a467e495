// WordPiece, as llama.cpp's llm_tokenizer_wpm_session: split the text into words (NFD base
// letters, lower case, punctuation and CJK characters as words of their own), then cut each word,
// prefixed with "▁", greedily into the longest tokens; a word that cannot be cut is <unk>.
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace vramfit::tokenizer {
namespace {

bool is_chinese_char(uint32_t c) {
  return (c >= 0x04E00 && c <= 0x09FFF) || (c >= 0x03400 && c <= 0x04DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
         (c >= 0x2B920 && c <= 0x2CEAF) ||  // HF's rust code starts at 0x2B920 (not 0x2B820); so do we
         (c >= 0x0F900 && c <= 0x0FAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t original : utf8_to_codepoints(text)) {
    const uint32_t c = nfd_base(original);
    const CodepointFlags flags = codepoint_flags(c);
    if (flags.whitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (c == 0 || c == replacement_char || flags.control()) continue;
    const std::string lower = codepoint_to_utf8(to_lower(c));
    if (flags.punctuation() || (c < 0x7F && flags.symbol()) || is_chinese_char(c)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = lower;
      words.emplace_back();
    } else {
      words.back() += lower;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

void encode_word(const Vocab &vocab, const std::string &word, std::vector<int32_t> &out) {
  const std::string marked = "\xE2\x96\x81" + word;  // the phantom space that starts a word
  const size_t n = marked.size();
  const size_t first_token = out.size();
  for (size_t i = 0; i < n; ++i) {
    bool found = false;
    for (size_t j = std::min(n, i + vocab.max_token_len + 1); j > i; --j) {
      const int32_t id = vocab.find(std::string_view(marked).substr(i, j - i));
      if (id >= 0) {
        out.push_back(id);
        i = j - 1;
        found = true;
        break;
      }
    }
    if (!found) {
      out.resize(first_token);
      break;
    }
  }
  if (out.size() == first_token && vocab.unk >= 0) out.push_back(vocab.unk);
}

}  // namespace

void encode_wpm(const Vocab &vocab, std::string_view text, std::vector<int32_t> &out) {
  for (const std::string &word : split_words(text)) encode_word(vocab, word, out);
}

}  // namespace vramfit::tokenizer
