// `vramfit synth`: writes a synthetic GGUF (seeded random weights) of any size and of any
// architecture vramfit runs, to benchmark and test without downloads. Tensors are produced (and
// quantized, with --type) while the file is written, so a multi-gigabyte model never sits in
// memory.
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/quantize.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kUsage = R"(usage: vramfit synth [options] -o FILE.gguf

Writes a GGUF with seeded random weights: F32, or quantized as it is written (--type).

  -o, --output FILE        where to write (required)
      --preset NAME        tinyllama: llama, n_embd 2048, 22 layers, 32 heads / 4 KV, n_ff 5632,
                             vocab 32000
                           qwen3moe-30b-a3b: Qwen3-30B-A3B's layer shape (qwen3moe, n_embd 2048,
                             32 heads / 4 KV of 128, 128 experts, 8 used, n_ff_exp 768) with 4 of
                             its 48 layers and vocab 32000, Q4_K
                           mixtral-8x7b: Mixtral-8x7B's layer shape (llama, n_embd 4096, 32 heads
                             / 8 KV, 8 experts, 2 used, n_ff 14336) with 2 of its 32 layers, Q4_K
                           gpt-oss-20b: gpt-oss-20b's layer shape (gpt-oss, n_embd 2880, 64 heads /
                             8 KV of 64, 32 experts, 4 used, n_ff_exp 2880, window 128, YaRN 32)
                             with 2 of its 24 layers and vocab 32000, as llama.cpp's MXFP4_MOE:
                             MXFP4 experts, Q8_0 matrices
      --arch NAME          llama (default), qwen2, qwen3, qwen3moe, gpt-oss
      --type TYPE          weight matrices' type: F32 (default), F16, Q4_0, Q8_0, Q2_K..Q6_K, MXFP4;
                           norms, biases, sinks and routers stay F32
      --expert-type TYPE   the experts' type (default: --type)
      --n-embd N           (default 256)
      --n-layer N          (default 2)
      --n-head N           (default 4)
      --n-head-kv N        (default: n_head)
      --head-dim N         (default: n_embd / n_head)
      --n-ff N             (default 768)
      --n-expert N         experts per layer: a MoE model (llama: Mixtral; required for qwen3moe)
      --n-expert-used N    experts per token (default 2)
      --n-ff-exp N         feed-forward width of one expert (default: n_ff)
      --n-vocab N          (default 512; with --vocab-from: that vocab's size)
      --n-ctx N            trained context length written to the metadata (default 2048)
      --vocab-from FILE    copy the tokenizer (tokenizer.ggml.*) from this GGUF
      --seed S             (default 42)
)";

struct BadFlag {
  std::string message;
};

struct Shape {
  std::string arch = "llama";
  GgmlType type = GgmlType::F32;
  std::optional<GgmlType> expert_type;  // --type when unset
  int64_t n_embd = 256, n_layer = 2, n_head = 4, n_head_kv = 0, head_dim = 0, n_ff = 768, n_vocab = 0,
          n_ctx = 2048;
  int64_t n_expert = 0, n_expert_used = 2, n_ff_exp = 0;
  uint64_t seed = 42;
  std::string output, vocab_from;
};

void apply_preset(Shape &s, std::string_view name) {
  if (name == "tinyllama") {
    s.n_embd = 2048, s.n_layer = 22, s.n_head = 32, s.n_head_kv = 4, s.n_ff = 5632, s.n_vocab = 32000;
  } else if (name == "qwen3moe-30b-a3b") {
    s.arch = "qwen3moe", s.type = GgmlType::Q4_K, s.n_embd = 2048, s.n_layer = 4, s.n_head = 32, s.n_head_kv = 4,
    s.head_dim = 128, s.n_ff = 6144, s.n_expert = 128, s.n_expert_used = 8, s.n_ff_exp = 768, s.n_vocab = 32000,
    s.n_ctx = 40960;
  } else if (name == "mixtral-8x7b") {
    s.arch = "llama", s.type = GgmlType::Q4_K, s.n_embd = 4096, s.n_layer = 2, s.n_head = 32, s.n_head_kv = 8,
    s.n_ff = 14336, s.n_expert = 8, s.n_expert_used = 2, s.n_vocab = 32000, s.n_ctx = 32768;
  } else if (name == "gpt-oss-20b") {
    s.arch = "gpt-oss", s.type = GgmlType::Q8_0, s.expert_type = GgmlType::MXFP4, s.n_embd = 2880, s.n_layer = 2,
    s.n_head = 64, s.n_head_kv = 8, s.head_dim = 64, s.n_ff = 2880, s.n_expert = 32, s.n_expert_used = 4,
    s.n_ff_exp = 2880, s.n_vocab = 32000, s.n_ctx = 131072;
  } else {
    throw BadFlag{fmt::format("--preset: unknown preset '{}' (tinyllama, qwen3moe-30b-a3b, mixtral-8x7b, gpt-oss-20b)",
                              name)};
  }
}

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
    else if (flag == "--preset") apply_preset(s, value());
    else if (flag == "--arch") s.arch = value();
    else if (flag == "--type") {
      const std::string_view name = value();
      const auto type = type_from_name(name);
      if (!type) throw BadFlag{fmt::format("--type: unknown type '{}'", name)};
      s.type = *type;
    } else if (flag == "--expert-type") {
      const std::string_view name = value();
      const auto type = type_from_name(name);
      if (!type) throw BadFlag{fmt::format("--expert-type: unknown type '{}'", name)};
      s.expert_type = *type;
    } else if (flag == "--n-embd") s.n_embd = parse_int(flag, value());
    else if (flag == "--n-layer") s.n_layer = parse_int(flag, value());
    else if (flag == "--n-head") s.n_head = parse_int(flag, value());
    else if (flag == "--n-head-kv") s.n_head_kv = parse_int(flag, value());
    else if (flag == "--head-dim") s.head_dim = parse_int(flag, value());
    else if (flag == "--n-ff") s.n_ff = parse_int(flag, value());
    else if (flag == "--n-expert") s.n_expert = parse_int(flag, value());
    else if (flag == "--n-expert-used") s.n_expert_used = parse_int(flag, value());
    else if (flag == "--n-ff-exp") s.n_ff_exp = parse_int(flag, value());
    else if (flag == "--n-vocab") s.n_vocab = parse_int(flag, value());
    else if (flag == "--n-ctx") s.n_ctx = parse_int(flag, value());
    else if (flag == "--seed") s.seed = static_cast<uint64_t>(parse_int(flag, value()));
    else if (flag == "--vocab-from") s.vocab_from = value();
    else throw BadFlag{fmt::format("unknown option '{}' (see vramfit synth --help)", flag)};
  }
  if (s.output.empty()) throw BadFlag{"-o FILE is required"};
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3" && s.arch != "qwen3moe" && s.arch != "gpt-oss")
    throw BadFlag{fmt::format("--arch: '{}' is not one of llama, qwen2, qwen3, qwen3moe, gpt-oss", s.arch)};
  if ((s.arch == "qwen3moe" || s.arch == "gpt-oss") && s.n_expert == 0)
    throw BadFlag{fmt::format("--arch {} needs --n-expert", s.arch)};
  if (s.n_expert > 0 && s.arch != "llama" && s.arch != "qwen3moe" && s.arch != "gpt-oss")
    throw BadFlag{fmt::format("--n-expert: {} has no experts (llama, qwen3moe or gpt-oss)", s.arch)};
  if (!s.expert_type) s.expert_type = s.type;
  if (s.n_expert_used > s.n_expert && s.n_expert > 0) throw BadFlag{"--n-expert-used exceeds --n-expert"};
  if (s.n_ff_exp == 0) s.n_ff_exp = s.n_ff;
  if (s.n_head_kv == 0) s.n_head_kv = s.n_head;
  if (s.head_dim == 0) {
    if (s.n_embd % s.n_head != 0) throw BadFlag{"--n-embd must be a multiple of --n-head (or give --head-dim)"};
    s.head_dim = s.n_embd / s.n_head;
  }
  if (s.n_head % s.n_head_kv != 0) throw BadFlag{"--n-head must be a multiple of --n-head-kv"};
  if (s.head_dim % 2 != 0) throw BadFlag{"the head size must be even"};
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

// Rows of seeded uniform floats, quantized to `type` as they are made, on every core.
void fill_matrix(std::span<std::byte> out, GgmlType type, int64_t row_length, uint64_t seed, float a) {
  if (type == GgmlType::F32) return fill_uniform(out, seed, a);
  const uint64_t row = row_bytes(type, row_length);
  const auto n_rows = static_cast<int64_t>(out.size() / row);
  const int64_t n_threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  auto work = [&](int64_t first, int64_t last) {
    std::vector<float> x(static_cast<size_t>(row_length));
    for (int64_t r = first; r < last; ++r) {
      std::span<std::byte> floats(reinterpret_cast<std::byte *>(x.data()), x.size() * sizeof(float));
      fill_uniform(floats, mix(seed ^ static_cast<uint64_t>(r)), a);
      quantize_rows(type, x.data(), out.data() + row * static_cast<uint64_t>(r), 1, row_length);
    }
  };
  std::vector<std::thread> threads;
  const int64_t per = (n_rows + n_threads - 1) / n_threads;
  for (int64_t t = 1; t < n_threads; ++t)
    threads.emplace_back(work, std::min(n_rows, t * per), std::min(n_rows, (t + 1) * per));
  work(0, std::min(n_rows, per));
  for (auto &t : threads) t.join();
}

void write_hparams(gguf::Writer &w, const Shape &s) {
  const std::string a = s.arch + ".";
  w.set_string("general.architecture", s.arch);
  w.set_string("general.name", "vramfit synthetic " + s.arch);
  w.set_u32(a + "context_length", static_cast<uint32_t>(s.n_ctx));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32(a + "block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_u32(a + "attention.key_length", static_cast<uint32_t>(s.head_dim));
  w.set_u32(a + "attention.value_length", static_cast<uint32_t>(s.head_dim));
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(s.head_dim));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  if (s.arch == "gpt-oss") {  // as the official files: window 128, YaRN 32 over 4096, base 150000
    w.set_f32(a + "rope.freq_base", 150000.0f);
    w.set_u32(a + "attention.sliding_window", 128);
    w.set_string(a + "rope.scaling.type", "yarn");
    w.set_f32(a + "rope.scaling.factor", 32.0f);
    w.set_u32(a + "rope.scaling.original_context_length", 4096);
  } else {
    w.set_f32(a + "rope.freq_base", 10000.0f);
  }
  if (s.n_expert > 0) {
    w.set_u32(a + "expert_count", static_cast<uint32_t>(s.n_expert));
    w.set_u32(a + "expert_used_count", static_cast<uint32_t>(s.n_expert_used));
    w.set_u32(a + "expert_feed_forward_length", static_cast<uint32_t>(s.n_ff_exp));
  }
}

void add_tensors(gguf::Writer &w, const Shape &s) {
  uint64_t tensor_seed = s.seed;
  // A weight matrix [n_expert][n_out][n_in] in the chosen type (--expert-type for experts, F32
  // for routers).
  auto matrix = [&](std::string name, int64_t n_in, int64_t n_out, int64_t n_expert = 1, bool f32 = false) {
    const int64_t ne[3] = {n_in, n_out, n_expert};
    const uint64_t seed = mix(++tensor_seed);
    const float a = std::sqrt(3.0f / static_cast<float>(n_in));
    const GgmlType type = f32 ? GgmlType::F32 : n_expert > 1 ? *s.expert_type : s.type;
    w.add_tensor(std::move(name), type, std::span<const int64_t>(ne, n_expert > 1 ? 3 : 2),
                 [=](std::span<std::byte> out) { fill_matrix(out, type, n_in, seed, a); });
  };
  auto norm = [&](std::string name, int64_t n) {
    const int64_t ne[1] = {n};
    w.add_tensor(std::move(name), GgmlType::F32, ne, [](std::span<std::byte> out) {
      const float one = 1.0f;
      for (size_t i = 0; i < out.size(); i += sizeof(float)) std::memcpy(out.data() + i, &one, sizeof one);
    });
  };
  // gpt-oss's biases and sinks, F32 zeros ([n] or [n, n_expert]): they cost the same reads as
  // trained ones.
  auto zeros = [&](std::string name, int64_t n, int64_t n_expert = 1) {
    const int64_t ne[2] = {n, n_expert};
    w.add_tensor(std::move(name), GgmlType::F32, std::span<const int64_t>(ne, n_expert > 1 ? 2 : 1),
                 [](std::span<std::byte> out) { std::memset(out.data(), 0, out.size()); });
  };
  const bool gptoss = s.arch == "gpt-oss";
  const int64_t n_q = s.n_head * s.head_dim, n_kv = s.n_head_kv * s.head_dim;
  matrix("token_embd.weight", s.n_embd, s.n_vocab);
  for (int64_t l = 0; l < s.n_layer; ++l) {
    auto name = [l](const char *t, const char *suffix = "weight") { return fmt::format("blk.{}.{}.{}", l, t, suffix); };
    norm(name("attn_norm"), s.n_embd);
    matrix(name("attn_q"), s.n_embd, n_q);
    matrix(name("attn_k"), s.n_embd, n_kv);
    matrix(name("attn_v"), s.n_embd, n_kv);
    matrix(name("attn_output"), n_q, s.n_embd);
    if (s.arch == "qwen2")
      for (auto [t, n] : {std::pair{"attn_q", n_q}, std::pair{"attn_k", n_kv}, std::pair{"attn_v", n_kv}})
        norm(name(t, "bias"), n);  // biases of 1: as good as random for a benchmark
    if (s.arch == "qwen3" || s.arch == "qwen3moe") {
      norm(name("attn_q_norm"), s.head_dim);
      norm(name("attn_k_norm"), s.head_dim);
    }
    if (gptoss) {
      for (auto [t, n] : {std::pair{"attn_q", n_q}, std::pair{"attn_k", n_kv}, std::pair{"attn_v", n_kv},
                          std::pair{"attn_output", s.n_embd}})
        zeros(name(t, "bias"), n);
      zeros(name("attn_sinks"), s.n_head);
    }
    norm(name(gptoss ? "post_attention_norm" : "ffn_norm"), s.n_embd);
    if (s.n_expert > 0) {
      matrix(name("ffn_gate_inp"), s.n_embd, s.n_expert, 1, /*f32=*/true);
      matrix(name("ffn_gate_exps"), s.n_embd, s.n_ff_exp, s.n_expert);
      matrix(name("ffn_up_exps"), s.n_embd, s.n_ff_exp, s.n_expert);
      matrix(name("ffn_down_exps"), s.n_ff_exp, s.n_embd, s.n_expert);
      if (gptoss) {
        zeros(name("ffn_gate_inp", "bias"), s.n_expert);
        zeros(name("ffn_gate_exps", "bias"), s.n_ff_exp, s.n_expert);
        zeros(name("ffn_up_exps", "bias"), s.n_ff_exp, s.n_expert);
        zeros(name("ffn_down_exps", "bias"), s.n_embd, s.n_expert);
      }
    } else {
      matrix(name("ffn_gate"), s.n_embd, s.n_ff);
      matrix(name("ffn_up"), s.n_embd, s.n_ff);
      matrix(name("ffn_down"), s.n_ff, s.n_embd);
    }
  }
  norm("output_norm.weight", s.n_embd);
  matrix("output.weight", s.n_embd, s.n_vocab);
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
    for (GgmlType type : {s.type, *s.expert_type}) {
      const int64_t block = type_traits(static_cast<uint32_t>(type))->block_size;
      for (int64_t n : {s.n_embd, s.n_head * s.head_dim, s.n_ff, s.n_ff_exp})
        if (type != GgmlType::F32 && n % block != 0)
          throw BadFlag{fmt::format("type {}: rows of {} are not a multiple of its block of {}", type_name(type), n,
                                    block)};
    }
  } catch (const BadFlag &bad) {
    fmt::print(stderr, "vramfit synth: {}\n", bad.message);
    return 2;
  }
  write_hparams(w, s);
  w.set_u32("general.file_type", 0);
  add_tensors(w, s);
  w.write_file(s.output, [](size_t done, size_t total) {
    if (done == total || done % 16 == 0) fmt::print(stderr, "\rsynth: {}/{} tensors", done, total);
  });
  fmt::print(stderr, "\nsynth: wrote {} ({}, {} (experts {}), n_embd {}, {} layers, {} heads / {} KV of {}, n_ff {}, {} experts ({} used, "
             "n_ff_exp {}), vocab {})\n",
             s.output, s.arch, type_name(s.type), type_name(*s.expert_type), s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.head_dim, s.n_ff,
             s.n_expert, s.n_expert_used, s.n_ff_exp, s.n_vocab);
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("synth", "write a synthetic GGUF (random weights, any architecture) for benchmarks", synth);

}  // namespace vramfit::cli
