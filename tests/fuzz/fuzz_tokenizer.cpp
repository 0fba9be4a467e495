// libFuzzer: every tokenizer on arbitrary bytes — SentencePiece, byte-level BPE with each of its
// pre-tokenizers (through the shared vocabularies and directly), WordPiece — encode, decode and
// token_to_piece. Input: byte 0 picks the vocabulary, byte 1 the flags, the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>

#include "fuzz_util.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/vocab.hpp"
#include "vramfit/gguf.hpp"

namespace {

using namespace vramfit;

// One of each kind and pre-tokenizer family the shared data has (ggml-vocab-NAME.gguf).
constexpr const char *kVocabs[] = {
    "llama-spm", "phi-3",     "baichuan", "bert-bge", "gpt-2",   "mpt",   "starcoder", "refact", "deepseek-coder",
    "deepseek-llm", "falcon", "gpt-neox", "llama3",   "qwen3",   "gpt-oss",
};

constexpr tokenizer::PreTokenizer kPreTokenizers[] = {
    tokenizer::PreTokenizer::default_,       tokenizer::PreTokenizer::llama3,       tokenizer::PreTokenizer::qwen2,
    tokenizer::PreTokenizer::gpt2,           tokenizer::PreTokenizer::starcoder,    tokenizer::PreTokenizer::deepseek_coder,
    tokenizer::PreTokenizer::deepseek_llm,   tokenizer::PreTokenizer::falcon,       tokenizer::PreTokenizer::gpt4o,
};

std::vector<tokenizer::Tokenizer> &tokenizers() {
  static std::vector<tokenizer::Tokenizer> all;
  return all;
}

void load_tokenizers() {
  for (const char *name : kVocabs) {
    const auto path = fuzz::shared_dir() / "vocab" / (std::string("ggml-vocab-") + name + ".gguf");
    if (!std::filesystem::exists(path)) continue;
    tokenizers().push_back(tokenizer::Tokenizer::from_gguf(gguf::File::open(path)));
  }
  if (tokenizers().empty()) {
    std::fprintf(stderr, "fuzz_tokenizer: no vocabulary under %s (set VRAMFIT_TEST_DATA)\n",
                 (fuzz::shared_dir() / "vocab").c_str());
    std::exit(1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::write_seeds_if_asked([](fuzz::SeedWriter &seeds) {
    // Every test string of every vocabulary, for a vocabulary chosen round-robin, flags 0..3.
    unsigned n = 0;
    for (const auto &path : fuzz::shared_files("vocab", ".inp"))
      for (const std::string &text : fuzz::split_vocab_tests(*fuzz::read_file(path))) {
        seeds.add(std::string{static_cast<char>(n % 64), static_cast<char>(n % 4)} + text);
        ++n;
      }
  });
  load_tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  const std::string_view text(reinterpret_cast<const char *>(data) + 2, size - 2);
  const tokenizer::Tokenizer &tok = tokenizers()[data[0] % tokenizers().size()];
  const bool add_special = data[1] & 1, parse_special = data[1] & 2, render_special = data[1] & 4;

  const std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.n_vocab()) fuzz::violated("encode returned an id outside the vocabulary");
  (void)tok.decode(ids, render_special);
  // Ids from the input: decode must refuse those out of range with an Error, never read past.
  for (size_t i = 0; i + 4 <= text.size() && i < 64; i += 4) {
    int32_t id;
    std::memcpy(&id, text.data() + i, 4);
    try {
      (void)tok.token_to_piece(id, render_special);
    } catch (const Error &e) {
      if (id >= 0 && id < tok.n_vocab()) fuzz::violated("token_to_piece refused an id in range");
    }
  }
  (void)tokenizer::pretokenize(kPreTokenizers[data[0] % std::size(kPreTokenizers)], text);
  return 0;
}
