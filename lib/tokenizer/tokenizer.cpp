// Tokenizer: special-token partition, then the SPM / BPE / WPM encoder on each piece of text;
// decoding concatenates precomputed pieces and applies llama.cpp's clean-ups.
#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <cctype>

#include "common/error.hpp"
#include "tokenizer/vocab.hpp"

namespace vramfit::tokenizer {
namespace {

// A piece of the input: raw text to encode, or a special token found in it.
struct Fragment {
  int32_t token = -1;     // >= 0: a special token
  std::string_view text;  // raw text when token < 0
};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Splits `text` on one special token: each raw fragment becomes [left, token, right]...
void split_on_token(const Vocab &vocab, int32_t id, std::vector<Fragment> &fragments) {
  const TokenData &token = vocab.tokens[id];
  std::vector<Fragment> out;
  out.reserve(fragments.size());
  for (const Fragment &f : fragments) {
    if (f.token >= 0) {
      out.push_back(f);
      continue;
    }
    std::string_view rest = f.text;
    for (size_t match; (match = rest.find(token.text)) != std::string_view::npos;) {
      std::string_view left = rest.substr(0, match);
      if (token.attr & attr_lstrip)
        while (!left.empty() && is_space(left.back())) left.remove_suffix(1);
      if (!left.empty()) out.push_back({-1, left});
      out.push_back({id, {}});
      rest = rest.substr(match + token.text.size());
      if (token.attr & attr_rstrip)
        while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    }
    if (!rest.empty()) out.push_back({-1, rest});
  }
  fragments = std::move(out);
}

// llama.cpp's tokenizer_st_partition: user-defined tokens are always matched first; control
// and unknown tokens only when parse_special.
std::vector<Fragment> partition(const Vocab &vocab, std::string_view text, bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, text});
  for (int32_t id : vocab.special_tokens) {
    if (!parse_special && (vocab.tokens[id].attr & (attr_control | attr_unknown))) continue;
    if (text.find(vocab.tokens[id].text) == std::string_view::npos) continue;  // cheap common case
    split_on_token(vocab, id, fragments);
  }
  return fragments;
}

void encode_fragment_spm(const Vocab &vocab, std::string_view raw, bool after_special, std::vector<int32_t> &out) {
  constexpr std::string_view space_mark = "\xE2\x96\x81";  // "▁" stands for " "
  std::string escaped;
  escaped.reserve(raw.size() + raw.size() / 2 + space_mark.size());
  if (vocab.add_space_prefix && after_special) escaped += space_mark;
  for (char c : raw) {
    if (c == ' ') escaped += space_mark;
    else escaped += c;
  }
  encode_spm(vocab, escaped, out);
}

// The three clean-up passes of llama.cpp's detokenize (clean_spaces).
std::string clean_spaces(const std::string &in) {
  if (in.empty()) return in;
  // " ?", " !", " .", " ," lose their space.
  std::string a(1, in[0]);
  for (size_t i = 1; i < in.size(); ++i) {
    const char x = in[i];
    if (in[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a += x;
  }
  // " ' " -> "'". llama.cpp blanks the dropped space in place, so it no longer counts as the
  // space before the character after it.
  std::string b(1, a[0]);
  size_t dropped = std::string::npos;
  for (size_t i = 1; i < a.size(); ++i) {
    const char x = a[i];
    const bool space_before = a[i - 1] == ' ' && i - 1 != dropped;
    if (x == '\'' && i + 1 < a.size() && space_before && a[i + 1] == ' ') {
      b.pop_back();
      b += x;
      dropped = ++i;
      continue;
    }
    b += x;
  }
  // " 's", " 'm", " 're", " 've" lose their space.
  std::string c(1, b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    const char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      const bool two = i + 2 < b.size();
      if (x1 == 's' || x1 == 'm' || (two && ((x1 == 'r' && b[i + 2] == 'e') || (x1 == 'v' && b[i + 2] == 'e'))))
        c.pop_back();
    }
    c += x;
  }
  return c;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Vocab> vocab) noexcept : vocab_(std::move(vocab)) {}
Tokenizer::Tokenizer(const Tokenizer &) = default;
Tokenizer &Tokenizer::operator=(const Tokenizer &) = default;
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const gguf::File &file) {
  return Tokenizer(std::make_shared<const Vocab>(Vocab::load(file)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Vocab &v = *vocab_;
  std::vector<int32_t> out;
  const bool bos = add_special && (v.kind == VocabKind::wpm || v.add_bos) && v.bos >= 0;
  if (bos) out.push_back(v.bos);
  bool after_special = true;  // SPM: the first piece of text gets the space prefix too
  for (const Fragment &f : partition(v, text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    switch (v.kind) {
      case VocabKind::spm: encode_fragment_spm(v, f.text, after_special, out); break;
      case VocabKind::bpe: encode_bpe(v, f.text, out); break;
      case VocabKind::wpm: encode_wpm(v, f.text, out); break;
    }
    after_special = false;
  }
  if (add_special) {
    if (v.kind == VocabKind::wpm) {
      if (v.sep >= 0) out.push_back(v.sep);
    } else if (v.add_eos && v.eos >= 0) {
      out.push_back(v.eos);
    }
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t token, bool render_special) const {
  const Vocab &v = *vocab_;
  if (token < 0 || token >= n_vocab())
    detail::fail(ErrorCode::invalid_argument, "token id {} is outside the vocabulary [0, {})", token, n_vocab());
  if (!render_special && (v.tokens[token].attr & (attr_control | attr_unknown))) return {};
  return std::string(v.piece(token));
}

std::string Tokenizer::decode(std::span<const int32_t> tokens, bool render_special) const {
  std::string text;
  bool strip_leading_space = vocab_->add_space_prefix;  // the space SPM put before the text
  for (int32_t token : tokens) {
    std::string piece = token_to_piece(token, render_special);
    if (strip_leading_space && !piece.empty() && piece.front() == ' ') piece.erase(0, 1);
    strip_leading_space = false;
    text += piece;
  }
  return vocab_->clean_spaces ? clean_spaces(text) : text;
}

int32_t Tokenizer::n_vocab() const noexcept { return static_cast<int32_t>(vocab_->tokens.size()); }
int32_t Tokenizer::bos() const noexcept { return vocab_->bos; }
int32_t Tokenizer::eos() const noexcept { return vocab_->eos; }
bool Tokenizer::is_eog(int32_t token) const noexcept {
  return std::binary_search(vocab_->eog_tokens.begin(), vocab_->eog_tokens.end(), token);
}
bool Tokenizer::add_bos() const noexcept { return vocab_->add_bos; }
bool Tokenizer::add_eos() const noexcept { return vocab_->add_eos; }

std::string_view Tokenizer::kind() const noexcept {
  switch (vocab_->kind) {
    case VocabKind::spm: return "spm";
    case VocabKind::bpe: return "bpe";
    case VocabKind::wpm: return "wpm";
  }
  return "spm";
}

std::string_view Tokenizer::token_text(int32_t token) const {
  if (token < 0 || token >= n_vocab())
    detail::fail(ErrorCode::invalid_argument, "token id {} is outside the vocabulary [0, {})", token, n_vocab());
  return vocab_->tokens[token].text;
}

}  // namespace vramfit::tokenizer
