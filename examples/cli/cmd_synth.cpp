// `vramfit synth`: writes a synthetic llama GGUF (seeded random F32 weights) of any size, to
// benchmark and test without downloads. Tensors are produced while the file is written, so a
// multi-gigabyte model never sits in memory.
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cli.hpp"
#include "vramfit/gguf.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kUsage = R"(usage: vramfit synth [options] -o FILE.gguf

Writes a llama-architecture GGUF with seeded random F32 weights.

  -o, --output FILE        where to write (required)
      --preset NAME        tinyllama: n_embd 2048, 22 layers, 32 heads / 4 KV, n_ff 5632, vocab 32000
      --n-embd N           (default 256)
      --n-layer N          (default 2)
      --n-head N           (default 4)
      --n-head-kv N        (default: n_head)
      --n-ff N             (default 768)
      --n-vocab N          (default 512; with --vocab-from: that vocab's size)
      --n-ctx N            trained context length written to the metadata (default 2048)
      --vocab-from FILE    copy the tokenizer (tokenizer.ggml.*) from this GGUF
      --seed S             (default 42)
)";

struct Shape {
  int64_t n_embd = 256, n_layer = 2, n_head = 4, n_head_kv = 0, n_ff = 768, n_vocab = 0, n_ctx = 2048;
  uint64_t seed = 42;
  std::string output, vocab_from;
};

struct BadFlag {
  std::string message;
};

int64_t parse_int(std::string_view flag, std::string_view text) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0)
    throw BadFlag{fmt::format("{}: '{}' is not a positive integer", flag, text)};
  return v;
}

Shape parse(std::span<const std::string_view> args) {
  Shape s;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) throw BadFlag{fmt::format("{} needs a value", flag)};
      return args[++i];
    };
    if (flag == "-o" || flag == "--output") s.output = value();
    else if (flag == "--preset") {
      if (value() != "tinyllama") throw BadFlag{fmt::format("--preset: unknown preset '{}' (tinyllama)", args[i])};
      s.n_embd = 2048, s.n_layer = 22, s.n_head = 32, s.n_head_kv = 4, s.n_ff = 5632, s.n_vocab = 32000;
    } else if (flag == "--n-embd") s.n_embd = parse_int(flag, value());
    else if (flag == "--n-layer") s.n_layer = parse_int(flag, value());
    else if (flag == "--n-head") s.n_head = parse_int(flag, value());
    else if (flag == "--n-head-kv") s.n_head_kv = parse_int(flag, value());
    else if (flag == "--n-ff") s.n_ff = parse_int(flag, value());
    else if (flag == "--n-vocab") s.n_vocab = parse_int(flag, value());
    else if (flag == "--n-ctx") s.n_ctx = parse_int(flag, value());
    else if (flag == "--seed") s.seed = static_cast<uint64_t>(parse_int(flag, value()));
    else if (flag == "--vocab-from") s.vocab_from = value();
    else throw BadFlag{fmt::format("unknown option '{}' (see vramfit synth --help)", flag)};
  }
  if (s.output.empty()) throw BadFlag{"-o FILE is required"};
  if (s.n_head_kv == 0) s.n_head_kv = s.n_head;
  if (s.n_embd % s.n_head != 0) throw BadFlag{"--n-embd must be a multiple of --n-head"};
  if (s.n_head % s.n_head_kv != 0) throw BadFlag{"--n-head must be a multiple of --n-head-kv"};
  if ((s.n_embd / s.n_head) % 2 != 0) throw BadFlag{"the head size (n_embd / n_head) must be even"};
  return s;
}

// splitmix64: fast, seedable, the same on every platform.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform weights in [-a, a] with a chosen so that W x keeps the scale of x (a = sqrt(3 / n_in)).
void fill_uniform(std::span<std::byte> out, uint64_t seed, float a) {
  const size_t n = out.size() / sizeof(float);
  std::vector<float> chunk(4096);
  for (size_t done = 0; done < n; done += chunk.size()) {
    const size_t len = std::min(chunk.size(), n - done);
    for (size_t i = 0; i < len; ++i) {
      const uint64_t r = mix(seed ^ ((done + i) * 0x2545f4914f6cdd1dull));
      chunk[i] = a * (static_cast<float>(r >> 40) * (2.0f / 16777216.0f) - 1.0f);
    }
    std::memcpy(out.data() + done * sizeof(float), chunk.data(), len * sizeof(float));
  }
}

// A placeholder SentencePiece vocab: control tokens, the 256 byte tokens, then filler pieces.
void write_placeholder_vocab(gguf::Writer &w, int64_t n_vocab) {
  std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types{2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);  // byte
  }
  while (static_cast<int64_t>(tokens.size()) < n_vocab) {
    tokens.push_back(fmt::format("\xe2\x96\x81t{}", tokens.size()));  // "▁t<i>"
    types.push_back(1);  // normal
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_strings("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
}

int64_t copy_vocab(gguf::Writer &w, const std::string &path) {
  const gguf::File vocab = gguf::File::open(path);
  for (const auto &kv : vocab.metadata())
    if (kv.key.starts_with("tokenizer.")) w.set_value(std::string(kv.key), kv.value);
  const gguf::Value *tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens) throw BadFlag{fmt::format("--vocab-from {}: the file has no tokenizer.ggml.tokens", path)};
  return static_cast<int64_t>(tokens->array_size());
}

int synth(std::span<const std::string_view> args) {
  if (asks_for_help(args)) {
    fmt::print("{}", kUsage);
    return 0;
  }
  Shape s;
  gguf::Writer w;
  try {
    s = parse(args);
    w.set_string("general.architecture", "llama");
    w.set_string("general.name", "vramfit synthetic llama");
    int64_t vocab_size = s.n_vocab ? s.n_vocab : 512;
    if (!s.vocab_from.empty()) {
      vocab_size = copy_vocab(w, s.vocab_from);
      if (s.n_vocab && s.n_vocab != vocab_size)
        throw BadFlag{fmt::format("--n-vocab {} differs from the {} tokens of {}", s.n_vocab, vocab_size, s.vocab_from)};
    } else {
      if (vocab_size < 259) throw BadFlag{"--n-vocab must be at least 259 for the placeholder vocab"};
      write_placeholder_vocab(w, vocab_size);
    }
    s.n_vocab = vocab_size;
  } catch (const BadFlag &bad) {
    fmt::print(stderr, "vramfit synth: {}\n", bad.message);
    return 2;
  }
  const int64_t head_dim = s.n_embd / s.n_head, n_kv = s.n_head_kv * head_dim;
  w.set_u32("llama.context_length", static_cast<uint32_t>(s.n_ctx));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32("llama.block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(head_dim));
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_u32("general.file_type", 0);  // all F32

  uint64_t tensor_seed = s.seed;
  auto matrix = [&](std::string name, int64_t n_in, int64_t n_out) {
    const int64_t ne[2] = {n_in, n_out};
    const uint64_t seed = mix(++tensor_seed);
    const float a = std::sqrt(3.0f / static_cast<float>(n_in));
    w.add_tensor(std::move(name), GgmlType::F32, ne, [seed, a](std::span<std::byte> out) { fill_uniform(out, seed, a); });
  };
  auto norm = [&](std::string name, int64_t n) {
    const int64_t ne[1] = {n};
    w.add_tensor(std::move(name), GgmlType::F32, ne, [](std::span<std::byte> out) {
      const float one = 1.0f;
      for (size_t i = 0; i < out.size(); i += sizeof(float)) std::memcpy(out.data() + i, &one, sizeof one);
    });
  };
  matrix("token_embd.weight", s.n_embd, s.n_vocab);
  for (int64_t l = 0; l < s.n_layer; ++l) {
    auto name = [l](const char *t) { return fmt::format("blk.{}.{}.weight", l, t); };
    norm(name("attn_norm"), s.n_embd);
    matrix(name("attn_q"), s.n_embd, s.n_embd);
    matrix(name("attn_k"), s.n_embd, n_kv);
    matrix(name("attn_v"), s.n_embd, n_kv);
    matrix(name("attn_output"), s.n_embd, s.n_embd);
    norm(name("ffn_norm"), s.n_embd);
    matrix(name("ffn_gate"), s.n_embd, s.n_ff);
    matrix(name("ffn_up"), s.n_embd, s.n_ff);
    matrix(name("ffn_down"), s.n_ff, s.n_embd);
  }
  norm("output_norm.weight", s.n_embd);
  matrix("output.weight", s.n_embd, s.n_vocab);

  w.write_file(s.output, [](size_t done, size_t total) {
    if (done == total || done % 16 == 0) fmt::print(stderr, "\rsynth: {}/{} tensors", done, total);
  });
  fmt::print(stderr, "\nsynth: wrote {} (n_embd {}, {} layers, {} heads / {} KV, n_ff {}, vocab {})\n", s.output,
             s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.n_ff, s.n_vocab);
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("synth", "write a synthetic llama GGUF (random F32 weights) for benchmarks", synth);

}  // namespace vramfit::cli
