// The public vramfit::Vocabulary: a handle on a tokenizer::Tokenizer read from a GGUF file.
#include "vramfit/tokenizer.hpp"

#include "tokenizer/tokenizer.hpp"
#include "vramfit/gguf.hpp"

namespace vramfit {

Vocabulary Vocabulary::load(const std::filesystem::path &path) {
  const gguf::File file = gguf::File::open(path);
  return Vocabulary(std::make_shared<const tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(file)));
}

std::vector<int32_t> Vocabulary::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  return impl_->encode(text, add_special, parse_special);
}
std::string Vocabulary::detokenize(std::span<const int32_t> tokens, bool render_special) const {
  return impl_->decode(tokens, render_special);
}
std::string Vocabulary::token_to_piece(int32_t token, bool render_special) const {
  return impl_->token_to_piece(token, render_special);
}
int32_t Vocabulary::n_vocab() const noexcept { return impl_->n_vocab(); }
int32_t Vocabulary::bos() const noexcept { return impl_->bos(); }
int32_t Vocabulary::eos() const noexcept { return impl_->eos(); }
bool Vocabulary::is_eog(int32_t token) const noexcept { return impl_->is_eog(token); }
std::string_view Vocabulary::kind() const noexcept { return impl_->kind(); }

}  // namespace vramfit
