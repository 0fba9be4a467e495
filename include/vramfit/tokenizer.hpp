// vramfit::Vocabulary — the tokenizer of a GGUF file on its own, without loading the model.
//
// Works on vocab-only files (tokenizer metadata and no tensors, like llama.cpp's
// ggml-vocab-*.gguf) as well as on full models; encodes and decodes exactly like llama.cpp.
// A loaded vramfit::Model offers the same operations (Model::tokenize, ...).
//
// Thread-safety: a Vocabulary is an immutable, cheaply copyable handle; any number of threads may
// use it at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.hpp"
#include "vramfit/export.hpp"

namespace vramfit {
namespace tokenizer {
class Tokenizer;
}

class VRAMFIT_API Vocabulary {
 public:
  // Reads tokenizer.ggml.* from the file. Error(io) when unreadable, Error(format) for a broken
  // vocabulary, Error(unsupported) naming tokenizer.ggml.model / tokenizer.ggml.pre when vramfit
  // does not implement that tokenizer.
  static Vocabulary load(const std::filesystem::path &path);

  // add_special: BOS (and EOS / SEP where the vocabulary asks for them), like llama.cpp.
  // parse_special: control tokens written in the text ("<s>", "<|endoftext|>") become their ids;
  // without it they are plain text (a user typing "<|im_end|>" ends no turn). User-defined tokens
  // (Qwen3's "<think>", gpt-oss's "<|channel|>") are matched either way, as in llama.cpp.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true, bool parse_special = false) const;
  // render_special: control tokens are written as their text instead of nothing.
  std::string detokenize(std::span<const int32_t> tokens, bool render_special = false) const;
  std::string token_to_piece(int32_t token, bool render_special = false) const;

  int32_t n_vocab() const noexcept;
  int32_t bos() const noexcept;  // -1 when absent
  int32_t eos() const noexcept;  // -1 when absent
  bool is_eog(int32_t token) const noexcept;
  std::string_view kind() const noexcept;  // "spm", "bpe" or "wpm"

 private:
  explicit Vocabulary(std::shared_ptr<const tokenizer::Tokenizer> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<const tokenizer::Tokenizer> impl_;
};

}  // namespace vramfit
