// Text <-> token ids, from the vocabulary stored in a GGUF file, reproducing llama.cpp exactly.
//
// Three families, picked by `tokenizer.ggml.model`:
//   "llama" -> "spm": SentencePiece, merges by score, "▁" for spaces, <0xXX> byte fallback;
//   "gpt2"  -> "bpe": byte-level BPE with merge ranks and a pre-tokenizer named by
//                     `tokenizer.ggml.pre` (default, llama-bpe, qwen2, gpt-4o, gpt-2, deepseek-coder,
//                     deepseek-llm, falcon, mpt, starcoder, refact...);
//   "bert"  -> "wpm": WordPiece (NFD, accents stripped, lower case), "▁" marks word starts.
// Special tokens are matched in the text first: user-defined ones always, control ones only
// when parse_special (llama.cpp's tokenizer_st_partition).
//
// Thread-safety: a Tokenizer is immutable after construction; any number of threads may
// encode and decode at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/gguf.hpp"

namespace vramfit::tokenizer {

struct Vocab;  // the tables behind a Tokenizer (vocab.hpp)

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from the file (a vocab-only file works). Throws Error(unsupported)
  // naming tokenizer.ggml.model / tokenizer.ggml.pre when unknown, Error(format) for a broken
  // vocabulary (missing tokens, array lengths that disagree, ids out of range).
  static Tokenizer from_gguf(const gguf::File &file);

  // add_special: BOS (and EOS where the vocab asks for it; WordPiece: [CLS] ... [SEP]) like
  // llama.cpp's llama_tokenize. User-defined tokens are always matched in the text first;
  // parse_special: control tokens written in the text ("<s>", "<|endoftext|>") become their ids.
  // Invalid UTF-8 never throws and is handled as llama.cpp does: SPM keeps every byte through
  // byte tokens <0xXX>; BPE and WPM read each byte that starts no valid sequence as U+FFFD
  // (BPE encodes U+FFFD's bytes, WPM drops it).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;

  // The bytes of one token: byte tokens give the raw byte, SPM "▁" gives a space, BPE's
  // byte<->unicode mapping is undone. Control tokens give "" unless render_special.
  // Throws Error(invalid_argument) for an id outside [0, n_vocab).
  std::string token_to_piece(int32_t token, bool render_special = false) const;
  // Concatenated pieces; for SPM with add_space_prefix the leading space of the first token is
  // removed, like llama.cpp's llama_detokenize(remove_special=false, unparse_special).
  std::string decode(std::span<const int32_t> tokens, bool render_special = false) const;

  int32_t n_vocab() const noexcept;
  int32_t bos() const noexcept;  // -1 when the vocab has none
  int32_t eos() const noexcept;  // -1 when the vocab has none
  bool is_eog(int32_t token) const noexcept;  // end of generation: eos, eot, eom, ...
  bool add_bos() const noexcept;
  bool add_eos() const noexcept;
  std::string_view kind() const noexcept;  // "spm", "bpe", "wpm"
  // The stored text of a token (e.g. "▁the", "<0x0A>", "Ġthe"), for diagnostics.
  std::string_view token_text(int32_t token) const;

  Tokenizer(const Tokenizer &);  // copies share the immutable tables
  Tokenizer &operator=(const Tokenizer &);
  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

 private:
  explicit Tokenizer(std::shared_ptr<const Vocab> vocab) noexcept;
  std::shared_ptr<const Vocab> vocab_;
};

}  // namespace vramfit::tokenizer
