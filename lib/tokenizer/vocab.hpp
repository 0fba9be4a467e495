// The tables behind a Tokenizer, read once from tokenizer.ggml.* and never changed after.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
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
  std::string_view text;  // into Vocab::text_pool
  float score = 0.0f;
  uint32_t attr = attr_normal;
};

// Text -> id by open addressing. Each slot views its text (in the vocabulary's pools, or in the
// file while loading), so a lookup touches one slot and one text: a vocabulary of 200k tokens
// costs one vector, not 200k nodes.
class TextIndex {
 public:
  void reserve(size_t n);
  // Maps `text` to id. Returns the id an equal text had (it now maps to id), or -1.
  int32_t insert(std::string_view text, int32_t id);
  int32_t find(std::string_view text) const noexcept;  // -1: absent
  // The entry of an equal text views `text` from now on (which must outlive the index).
  void rebind(std::string_view text) noexcept;

 private:
  struct Slot {
    const char *data = nullptr;
    uint32_t size = 0;
    uint32_t hash = 0;
    int32_t id = -1;  // -1: empty
    std::string_view text() const noexcept { return {data, size}; }
  };
  static uint32_t hash(std::string_view text) noexcept;
  // The slot of `text` (whose hash is h), or the empty one it would take.
  size_t slot_of(std::string_view text, uint32_t h) const noexcept;
  void rehash(size_t capacity);
  std::vector<Slot> slots_;  // a power of two, at most half full
  size_t size_ = 0;
};

// (left id, right id) -> merge rank by open addressing; filled once, never grown.
class PairRanks {
 public:
  void reserve(size_t n);
  void try_insert(int32_t left, int32_t right, int32_t rank);  // the first rank of a pair wins
  int32_t find(int32_t left, int32_t right) const noexcept;   // -1: no such merge

 private:
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = -1;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  size_t position(uint64_t key) const noexcept;
  std::vector<Slot> slots_;
  unsigned shift_ = 64;
};

struct Vocab {
  VocabKind kind = VocabKind::spm;
  PreTokenizer pre = PreTokenizer::default_;
  std::string model_name;  // tokenizer.ggml.model
  std::string pre_name;    // tokenizer.ggml.pre

  std::vector<TokenData> tokens;
  std::vector<char> text_pool;    // the token texts, back to back (never resized once viewed)
  // BPE symbols: ids [0, n_vocab) are the tokens, ids from n_vocab on are merge operands that
  // are no token (a merge may build text that is no token and merge it again, as in llama.cpp).
  std::vector<char> symbol_pool;  // the texts of the symbols past the tokens
  TextIndex symbol_ids;           // text -> token or symbol id
  PairRanks merge_ranks;          // BPE: (left symbol, right symbol) -> rank
  std::vector<char> piece_pool;          // token_to_piece(id, render_special = true), precomputed...
  std::vector<uint32_t> piece_offsets;   // ...piece id is [piece_offsets[id], piece_offsets[id + 1])
  std::vector<int32_t> special_tokens;  // control / user-defined / unknown, longest text first
  std::vector<int32_t> eog_tokens;      // sorted
  size_t max_token_len = 0;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  bool add_bos = false, add_eos = false, add_sep = false;
  bool add_space_prefix = false;  // SPM: " " before the text (and after each special token)
  bool ignore_merges = false;     // BPE (llama3): a word that is a token is not merged
  bool clean_spaces = false;      // decode: " ," -> "," and friends

  Vocab() = default;
  Vocab(Vocab &&) noexcept = default;  // moves keep the pools' buffers, so the views stay valid
  Vocab &operator=(Vocab &&) noexcept = default;
  Vocab(const Vocab &) = delete;
  Vocab &operator=(const Vocab &) = delete;

  int32_t n_vocab() const noexcept { return static_cast<int32_t>(tokens.size()); }
  // The token whose text this is, -1 when none.
  int32_t find(std::string_view text) const {
    const int32_t id = find_symbol(text);
    return id < n_vocab() ? id : -1;
  }
  // The token or BPE symbol whose text this is, -1 when none.
  int32_t find_symbol(std::string_view text) const noexcept { return symbol_ids.find(text); }
  int merge_rank(int32_t left, int32_t right) const noexcept { return merge_ranks.find(left, right); }
  std::string_view piece(int32_t id) const noexcept {
    return {piece_pool.data() + piece_offsets[id], piece_offsets[id + 1] - piece_offsets[id]};
  }
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
