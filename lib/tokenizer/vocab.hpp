// The tables behind a Tokenizer, read once from tokenizer.ggml.* and never changed after.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vramfit/gguf.hpp"

namespace vramfit::tokenizer {

enum class VocabKind { spm, bpe, wpm };

// The pre-tokenizer families of byte-level BPE (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*), grouped by
// the regexes they use.
enum class PreTokenizer { default_, llama3, qwen2, gpt2, starcoder, deepseek_coder, deepseek_llm, falcon, gpt4o };

// Token attributes as llama.cpp derives them from tokenizer.ggml.token_type.
enum TokenAttr : uint32_t {
  attr_undefined = 0,
  attr_unknown = 1u << 0,
  attr_unused = 1u << 1,
  attr_normal = 1u << 2,
  attr_control = 1u << 3,
  attr_user_defined = 1u << 4,
  attr_byte = 1u << 5,
  attr_lstrip = 1u << 7,
  attr_rstrip = 1u << 8,
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = attr_normal;
};

struct Vocab {
  VocabKind kind = VocabKind::spm;
  PreTokenizer pre = PreTokenizer::default_;
  std::string model_name;  // tokenizer.ggml.model
  std::string pre_name;    // tokenizer.ggml.pre

  std::vector<TokenData> tokens;
  std::unordered_map<std::string_view, int32_t> token_ids;  // views into tokens[i].text
  std::unordered_map<std::string, int32_t> merge_ranks;     // "left right" -> rank (BPE)
  std::vector<std::string> pieces;  // token_to_piece(id, render_special = true), precomputed
  std::vector<int32_t> special_tokens;  // control / user-defined / unknown, longest text first
  std::vector<int32_t> eog_tokens;      // sorted
  size_t max_token_len = 0;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  bool add_bos = false, add_eos = false, add_sep = false;
  bool add_space_prefix = false;  // SPM: " " before the text (and after each special token)
  bool ignore_merges = false;     // BPE (llama3): a word that is a token is not merged
  bool clean_spaces = false;      // decode: " ," -> "," and friends

  int32_t find(std::string_view text) const {
    auto it = token_ids.find(text);
    return it == token_ids.end() ? -1 : it->second;
  }
  int merge_rank(std::string_view left, std::string_view right) const;
  int32_t byte_token(uint8_t byte) const;  // SPM "<0xXX>" (or the byte itself), -1 when absent

  static Vocab load(const gguf::File &file);
};

// The three encoders; each appends to `out`.
void encode_spm(const Vocab &vocab, std::string_view text, std::vector<int32_t> &out);
void encode_bpe(const Vocab &vocab, std::string_view text, std::vector<int32_t> &out);
void encode_wpm(const Vocab &vocab, std::string_view text, std::vector<int32_t> &out);

// BPE pre-tokenization: the words (as UTF-8, before byte encoding) of `text`.
std::vector<std::string> pretokenize(PreTokenizer pre, std::string_view text);

}  // namespace vramfit::tokenizer
