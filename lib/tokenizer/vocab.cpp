// Reading tokenizer.ggml.* into a Vocab, with llama.cpp's defaults and fix-ups (llama-vocab.cpp,
// llama_vocab::impl::load), so that ids, attributes and flags agree with it exactly.
#include "tokenizer/vocab.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <span>
#include <utility>

#include "common/error.hpp"
#include "common/log.hpp"
#include "tokenizer/unicode.hpp"

namespace vramfit::tokenizer {
namespace {

constexpr std::string_view kModel = "tokenizer.ggml.model";
constexpr std::string_view kPre = "tokenizer.ggml.pre";

struct PreTokenizerName {
  std::string_view name;
  PreTokenizer pre;
  bool ignore_merges = false;
  bool add_bos = false;
  bool clean_spaces = true;
};

// tokenizer.ggml.pre values we implement, with the flags llama.cpp sets for each.
constexpr PreTokenizerName kPreTokenizers[] = {
    {"default", PreTokenizer::default_},
    {"llama3", PreTokenizer::llama3, true, true},
    {"llama-v3", PreTokenizer::llama3, true, true},
    {"llama-bpe", PreTokenizer::llama3, true, true},
    {"falcon3", PreTokenizer::llama3, true, true},
    {"dbrx", PreTokenizer::llama3},
    {"smaug-bpe", PreTokenizer::llama3},
    {"deepseek-coder", PreTokenizer::deepseek_coder, false, false, false},
    {"deepseek-llm", PreTokenizer::deepseek_llm, false, false, false},
    {"falcon", PreTokenizer::falcon},
    {"mpt", PreTokenizer::gpt2},
    {"gpt-2", PreTokenizer::gpt2},
    {"phi-2", PreTokenizer::gpt2},
    {"jina-es", PreTokenizer::gpt2},
    {"jina-de", PreTokenizer::gpt2},
    {"gigachat", PreTokenizer::gpt2},
    {"olmo", PreTokenizer::gpt2},
    {"jais", PreTokenizer::gpt2},
    {"exaone4", PreTokenizer::gpt2},
    {"starcoder", PreTokenizer::starcoder},
    {"refact", PreTokenizer::starcoder},
    {"command-r", PreTokenizer::starcoder, false, false, false},
    {"smollm", PreTokenizer::starcoder, false, false, false},
    {"codeshell", PreTokenizer::starcoder},
    {"exaone", PreTokenizer::starcoder},
    {"minerva-7b", PreTokenizer::starcoder},
    {"qwen2", PreTokenizer::qwen2, false, false, false},
    {"deepseek-r1-qwen", PreTokenizer::qwen2, false, false, false},
    {"stablelm2", PreTokenizer::qwen2},
    {"megrez", PreTokenizer::qwen2},
    {"hunyuan", PreTokenizer::qwen2, false, false, false},
    {"gpt-4o", PreTokenizer::gpt4o, false, false, false},
    {"llama4", PreTokenizer::gpt4o, false, false, false},
    {"minimax-m2", PreTokenizer::gpt4o, false, false, false},
};

uint32_t attr_from_token_type(int32_t type) {
  switch (type) {
    case 1: return attr_normal;
    case 2: return attr_unknown;
    case 3: return attr_control;
    case 4: return attr_user_defined;
    case 5: return attr_unused;
    case 6: return attr_byte;
    default: return attr_undefined;
  }
}

void read_kind(const gguf::File &file, Vocab &v) {
  if (!file.has(kModel))
    detail::fail(ErrorCode::format, "{}: no tokenizer in this file ({} is missing)", file.name(), kModel);
  v.model_name = std::string(file.get<std::string_view>(kModel));
  v.pre_name = std::string(file.get_or<std::string_view>(kPre, ""));
  if (v.model_name == "llama") {
    v.kind = VocabKind::spm;
    v.bos = 1, v.eos = 2, v.unk = 0;
    v.add_space_prefix = true, v.add_bos = true;
  } else if (v.model_name == "bert") {
    v.kind = VocabKind::wpm;
    v.bos = 101, v.unk = 100, v.sep = 102, v.pad = 0, v.mask = 103;
    v.add_bos = true, v.add_sep = true, v.clean_spaces = true;
  } else if (v.model_name == "gpt2") {
    v.kind = VocabKind::bpe;
    v.bos = 11, v.eos = 11;
    v.clean_spaces = true;
    auto it = std::find_if(std::begin(kPreTokenizers), std::end(kPreTokenizers),
                           [&](const PreTokenizerName &p) { return p.name == v.pre_name; });
    if (it == std::end(kPreTokenizers)) {
      if (!v.pre_name.empty())
        detail::fail(ErrorCode::unsupported, "{}: {} = '{}' is not a pre-tokenizer vramfit implements",
                     file.name(), kPre, v.pre_name);
      detail::log_warn("{}: {} is missing; using the 'default' BPE pre-tokenizer", file.name(), kPre);
      it = std::begin(kPreTokenizers);
    }
    v.pre = it->pre;
    v.ignore_merges = it->ignore_merges;
    v.add_bos = it->add_bos;
    v.clean_spaces = it->clean_spaces;
  } else {
    detail::fail(ErrorCode::unsupported, "{}: {} = '{}' is not supported (llama, gpt2 and bert are)",
                 file.name(), kModel, v.model_name);
  }
  v.add_space_prefix = file.get_or<bool>("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
}

// Merge operands that are no token were viewed in the file; copy them into the vocabulary.
void own_symbol_texts(std::span<const std::string_view> extra, Vocab &v) {
  size_t total = 0;
  for (std::string_view text : extra) total += text.size();
  v.symbol_pool.reserve(total);
  for (std::string_view text : extra) {
    const size_t offset = v.symbol_pool.size();
    v.symbol_pool.insert(v.symbol_pool.end(), text.begin(), text.end());
    v.symbol_ids.rebind(std::string_view(v.symbol_pool.data() + offset, text.size()));
  }
}

std::string empty_token_name(size_t id) { return "[EMPTY_" + std::to_string(id) + "]"; }

// Copies the token texts into one pool (llama.cpp names an empty text "[EMPTY_<id>]") and indexes
// them. The pool is sized first, so the views taken while filling it never move. A text given
// twice is refused, as llama.cpp refuses it (it asserts one id per text).
void store_token_texts(const gguf::File &file, std::span<const std::string_view> texts, Vocab &v) {
  size_t total = 0;
  for (size_t i = 0; i < texts.size(); ++i) total += texts[i].empty() ? empty_token_name(i).size() : texts[i].size();
  v.text_pool.reserve(total);
  v.symbol_ids.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string generated = texts[i].empty() ? empty_token_name(i) : std::string();
    const std::string_view text = texts[i].empty() ? std::string_view(generated) : texts[i];
    if (text.size() > UINT32_MAX)
      detail::fail(ErrorCode::format, "{}: tokenizer.ggml.tokens[{}] is {} bytes long", file.name(), i, text.size());
    const size_t offset = v.text_pool.size();
    v.text_pool.insert(v.text_pool.end(), text.begin(), text.end());
    v.tokens[i].text = std::string_view(v.text_pool.data() + offset, text.size());
    v.max_token_len = std::max(v.max_token_len, text.size());
    const int32_t previous = v.symbol_ids.insert(v.tokens[i].text, static_cast<int32_t>(i));
    if (previous >= 0)
      detail::fail(ErrorCode::format, "{}: tokenizer.ggml.tokens[{}] repeats tokenizer.ggml.tokens[{}] ('{}')",
                   file.name(), i, previous, text);
  }
}

void read_tokens(const gguf::File &file, Vocab &v) {
  const std::vector<std::string_view> texts = file.get_strings("tokenizer.ggml.tokens");
  if (texts.empty() || texts.size() > static_cast<size_t>(INT32_MAX / 2))
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.tokens has {} entries", file.name(), texts.size());
  std::vector<float> scores;
  if (file.has("tokenizer.ggml.scores")) scores = file.get_array<float>("tokenizer.ggml.scores");
  std::vector<int32_t> types;
  if (file.has("tokenizer.ggml.token_type")) types = file.get_array<int32_t>("tokenizer.ggml.token_type");
  if (!scores.empty() && scores.size() != texts.size())
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.scores has {} entries for {} tokens", file.name(),
                 scores.size(), texts.size());
  if (!types.empty() && types.size() != texts.size())
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", file.name(),
                 types.size(), texts.size());

  v.tokens.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    v.tokens[i].score = scores.empty() ? 0.0f : scores[i];
    v.tokens[i].attr = types.empty() ? attr_normal : attr_from_token_type(types[i]);
  }
  store_token_texts(file, texts, v);
}

// BPE merges "left right" (split at the first space after the first byte, as llama.cpp does)
// become (left id, right id) -> rank. An operand that is no token gets a symbol id past the
// tokens: llama.cpp keys merges by text, so such a merge still applies to text built by others.
void read_merges(const gguf::File &file, Vocab &v) {
  if (v.kind != VocabKind::bpe) return;
  if (!file.has("tokenizer.ggml.merges"))
    detail::fail(ErrorCode::format, "{}: BPE vocabulary without tokenizer.ggml.merges", file.name());
  const std::vector<std::string_view> merges = file.get_strings("tokenizer.ggml.merges");
  if (merges.size() > static_cast<size_t>(INT32_MAX / 2))
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.merges has {} entries", file.name(), merges.size());
  std::vector<std::string_view> extra;  // viewed in the file for now; copied into symbol_pool below
  auto symbol_id = [&](std::string_view text) {
    int32_t id = v.find_symbol(text);
    if (id < 0) {
      id = v.n_vocab() + static_cast<int32_t>(extra.size());
      extra.push_back(text);
      (void)v.symbol_ids.insert(text, id);  // a new text: nothing to replace
    }
    return id;
  };
  v.merge_ranks.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    if (merges[i].size() > UINT32_MAX)
      detail::fail(ErrorCode::format, "{}: tokenizer.ggml.merges[{}] is {} bytes long", file.name(), i, merges[i].size());
    const size_t space = merges[i].find(' ', 1);
    if (space == std::string_view::npos || space + 1 == merges[i].size()) continue;  // can never apply
    const int32_t left = symbol_id(merges[i].substr(0, space));
    const int32_t right = symbol_id(merges[i].substr(space + 1));
    v.merge_ranks.try_insert(left, right, static_cast<int32_t>(i));
  }
  own_symbol_texts(extra, v);
}

void read_special_ids(const gguf::File &file, Vocab &v) {
  const std::pair<std::string_view, int32_t *> keys[] = {
      {"tokenizer.ggml.bos_token_id", &v.bos},          {"tokenizer.ggml.eos_token_id", &v.eos},
      {"tokenizer.ggml.eot_token_id", &v.eot},          {"tokenizer.ggml.eom_token_id", &v.eom},
      {"tokenizer.ggml.unknown_token_id", &v.unk},      {"tokenizer.ggml.seperator_token_id", &v.sep},
      {"tokenizer.ggml.padding_token_id", &v.pad},      {"tokenizer.ggml.mask_token_id", &v.mask},
      {"tokenizer.ggml.fim_pre_token_id", &v.fim_pre},  {"tokenizer.ggml.fim_suf_token_id", &v.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &v.fim_mid},  {"tokenizer.ggml.fim_pad_token_id", &v.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &v.fim_rep},  {"tokenizer.ggml.fim_sep_token_id", &v.fim_sep},
      {"tokenizer.ggml.prefix_token_id", &v.fim_pre},   {"tokenizer.ggml.suffix_token_id", &v.fim_suf},
      {"tokenizer.ggml.middle_token_id", &v.fim_mid},
  };
  for (const auto &[key, id] : keys) {
    if (!file.has(key)) continue;
    const int64_t value = file.get<int64_t>(key);
    if (value == -1 || value == UINT32_MAX) {  // -1 stored as u32: the converters' "none"
      *id = -1;
      continue;
    }
    if (value < 0 || static_cast<uint64_t>(value) >= v.tokens.size()) {
      detail::log_warn("{}: {} = {} is not a token id (n_vocab {}); using {}", file.name(), key, value,
                       v.tokens.size(), *id);
      continue;
    }
    *id = static_cast<int32_t>(value);
  }
  v.add_bos = file.get_or<bool>("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = file.get_or<bool>("tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_sep = file.get_or<bool>("tokenizer.ggml.add_sep_token", v.add_sep);
  // Defaults that point past a small vocabulary mean "absent".
  for (int32_t *id : {&v.bos, &v.eos, &v.unk, &v.sep, &v.pad, &v.mask})
    if (*id >= static_cast<int32_t>(v.tokens.size())) *id = -1;
}

// When the end-of-generation set holds <|return|> and <|call|> (o200k_harmony), <|end|> only ends
// a message: llama.cpp takes it out of the set and makes it user-defined.
void drop_harmony_end_from_eog(Vocab &v) {
  auto eog_with_text = [&](std::string_view text) {
    return std::find_if(v.eog_tokens.begin(), v.eog_tokens.end(), [&](int32_t id) { return v.tokens[id].text == text; });
  };
  const auto end = eog_with_text("<|end|>");
  if (end == v.eog_tokens.end() || eog_with_text("<|return|>") == v.eog_tokens.end() ||
      eog_with_text("<|call|>") == v.eog_tokens.end())
    return;
  v.tokens[*end].attr = attr_user_defined;
  v.eog_tokens.erase(end);
}

// llama.cpp finds EOT / EOM / FIM tokens by their text and forces them to be control tokens,
// then collects the end-of-generation set the same way.
void detect_special_by_text(Vocab &v) {
  auto make_control = [&](int32_t id) { v.tokens[id].attr = attr_control; };
  struct Detected { int32_t *id; std::initializer_list<std::string_view> texts; };
  const Detected detected[] = {
      {&v.eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}},
      {&v.eom, {"<|eom_id|>"}},
      {&v.fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>"}},
      {&v.fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>"}},
      {&v.fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>"}},
      {&v.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"}},
      {&v.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {&v.fim_sep, {"<|file_sep|>"}},
  };
  for (const Detected &d : detected) {
    if (*d.id != -1) continue;
    for (std::string_view text : d.texts) {
      const int32_t id = v.find(text);
      if (id < 0) continue;
      *d.id = id;  // llama.cpp walks a hash map, so which of several candidates wins is arbitrary
      make_control(id);
      break;
    }
  }

  std::vector<int32_t> eog;
  for (int32_t id : {v.fim_pad, v.fim_rep, v.fim_sep})
    if (id >= 0) eog.push_back(id);
  for (std::string_view text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
                                "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
                                "<end_of_utterance>"}) {
    const int32_t id = v.find(text);
    if (id < 0) continue;
    eog.push_back(id);
    make_control(id);
  }
  // gpt-oss (Harmony): llama.cpp always renders these, which makes them user-defined, so they
  // are matched in text even without parse_special. This comes after the EOG loop above.
  for (std::string_view text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    if (const int32_t id = v.find(text); id >= 0) v.tokens[id].attr = attr_user_defined;
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id >= 0) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  v.eog_tokens = std::move(eog);
  drop_harmony_end_from_eog(v);
}

void build_special_cache(Vocab &v) {
  for (size_t id = 0; id < v.tokens.size(); ++id)
    if (v.tokens[id].attr & (attr_control | attr_user_defined | attr_unknown))
      v.special_tokens.push_back(static_cast<int32_t>(id));
  // Longest first, so that a special token is never cut by a shorter one it contains.
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].text.size() > v.tokens[b].text.size();
  });
}

// Undoes GPT-2's byte -> code point mapping (llama_decode_text). A text that is not byte-level
// (code points outside the 256 of the mapping) renders as llama.cpp renders it:
// "[UNK_BYTE_0x<utf-8 hex><the whole text>]" for each such code point, which repeats the text once
// per code point, so a token of n of them costs n times its size. False, with nothing appended
// past it, when `out` would grow past `limit`.
bool append_bpe_piece(std::string_view text, std::vector<char> &out, size_t limit) {
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = static_cast<uint8_t>(text[pos]);
    if (cp >= 0x21 && cp <= 0x7E) {  // printable ASCII stands for itself: most of every vocabulary
      out.push_back(text[pos++]);
      continue;
    }
    pos += utf8_decode(text, pos, cp);
    if (const int byte = unicode_to_byte(cp); byte >= 0) {
      out.push_back(static_cast<char>(byte));
      continue;
    }
    const std::string bad = "[UNK_BYTE_0x";  // not a byte-level token text: what llama.cpp prints
    if (out.size() + bad.size() + 8 + text.size() + 1 > limit) return false;
    out.insert(out.end(), bad.begin(), bad.end());
    for (unsigned char c : codepoint_to_utf8(cp)) {
      const std::string hex = fmt::format("{:02x}", c);
      out.insert(out.end(), hex.begin(), hex.end());
    }
    out.insert(out.end(), text.begin(), text.end());
    out.push_back(']');
  }
  return true;
}

// The bytes a token stands for when rendered with render_special = true (llama.cpp's
// token_to_piece cache), appended to `out`; false when a non-byte-level BPE text would take it
// past `limit`. Every other piece is at most as long as its text.
bool append_piece(const Vocab &v, int32_t id, std::vector<char> &out, size_t limit) {
  const TokenData &t = v.tokens[id];
  auto append = [&](std::string_view bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); };
  if (t.attr & (attr_unknown | attr_control | attr_user_defined)) {
    append(t.text);
    return true;
  }
  if (v.kind == VocabKind::bpe) return !(t.attr & attr_normal) || append_bpe_piece(t.text, out, limit);
  if (t.attr & attr_normal) {
    for (size_t pos = 0; pos < t.text.size();) {  // "▁" -> " "
      if (t.text.substr(pos, 3) == "\xE2\x96\x81") {
        out.push_back(' ');
        pos += 3;
      } else {
        out.push_back(t.text[pos++]);
      }
    }
    return true;
  }
  if ((t.attr & attr_byte) && t.text.size() == 6 && t.text.starts_with("<0x")) {
    const std::string hex(t.text.substr(3, 2));
    out.push_back(static_cast<char>(std::strtol(hex.c_str(), nullptr, 16)));
  }
  return true;
}

// The pool is bounded by what the file holds: twice its token texts and 1 MiB leave room for a
// real vocabulary's few non-byte-level tokens, and refuse a file whose pieces would need more
// (a 90 KB file with one token of 30 000 CJK characters would otherwise take 2.7 GB).
void build_pieces(const gguf::File &file, Vocab &v) {
  v.piece_pool.reserve(v.text_pool.size());  // pieces are rarely longer than their texts
  v.piece_offsets.reserve(v.tokens.size() + 1);
  v.piece_offsets.push_back(0);
  const size_t limit = std::min<size_t>(2 * v.text_pool.size() + (1 << 20), UINT32_MAX);
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (!append_piece(v, static_cast<int32_t>(id), v.piece_pool, limit))
      detail::fail(ErrorCode::format,
                   "{}: tokenizer.ggml.tokens[{}] ({} bytes) is not byte-level BPE text, and rendering it as "
                   "llama.cpp does would take the token pieces past {} bytes (twice the token texts and 1 MiB)",
                   file.name(), id, v.tokens[id].text.size(), limit);
    v.piece_offsets.push_back(static_cast<uint32_t>(v.piece_pool.size()));
  }
}

}  // namespace

namespace {

uint64_t mix(uint64_t x) noexcept {  // a bijective multiply-xorshift finaliser
  x ^= x >> 32;
  x *= 0xD6E8FEB86659FD93ull;
  x ^= x >> 32;
  x *= 0xD6E8FEB86659FD93ull;
  return x ^ (x >> 32);
}

template <class T>
uint64_t load(const char *p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

}  // namespace

// 8 bytes at a time, the last 8 (or a short text) read with overlapping loads, through one mixer:
// token texts average 8-10 bytes, and std::hash (murmur) was a sixth of a 200k-token load.
uint32_t TextIndex::hash(std::string_view text) noexcept {
  const char *p = text.data();
  const size_t n = text.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) h = mix(h ^ load<uint64_t>(p + i));
    return static_cast<uint32_t>(mix(h ^ load<uint64_t>(p + n - 8)));
  }
  uint64_t tail = 0;  // with n, these bytes spell the whole text
  if (n >= 4) {
    tail = (load<uint32_t>(p) << 32) | load<uint32_t>(p + n - 4);
  } else if (n > 0) {
    auto byte = [&](size_t i) { return uint64_t{static_cast<uint8_t>(p[i])}; };
    tail = (byte(0) << 16) | (byte(n / 2) << 8) | byte(n - 1);
  }
  return static_cast<uint32_t>(mix(h ^ tail));
}

void TextIndex::reserve(size_t n) {
  size_t capacity = 16;
  while (capacity < 2 * n) capacity *= 2;
  if (capacity > slots_.size()) rehash(capacity);
}

void TextIndex::rehash(size_t capacity) {
  std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(capacity));
  const size_t mask = capacity - 1;
  for (const Slot &slot : old) {
    if (slot.id < 0) continue;
    size_t i = slot.hash & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

size_t TextIndex::slot_of(std::string_view text, uint32_t h) const noexcept {
  const size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (slots_[i].id >= 0 && !(slots_[i].hash == h && slots_[i].text() == text)) i = (i + 1) & mask;
  return i;
}

int32_t TextIndex::insert(std::string_view text, int32_t id) {
  if (2 * (size_ + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint32_t h = hash(text);
  Slot &slot = slots_[slot_of(text, h)];
  if (slot.id >= 0) return std::exchange(slot.id, id);
  slot = {text.data(), static_cast<uint32_t>(text.size()), h, id};
  ++size_;
  return -1;
}

int32_t TextIndex::find(std::string_view text) const noexcept {
  return slots_.empty() ? -1 : slots_[slot_of(text, hash(text))].id;
}

void TextIndex::rebind(std::string_view text) noexcept {
  if (slots_.empty()) return;
  Slot &slot = slots_[slot_of(text, hash(text))];
  if (slot.id >= 0) slot.data = text.data();
}

void PairRanks::reserve(size_t n) {
  unsigned bits = 4;
  while ((size_t{1} << bits) < 2 * n) ++bits;
  slots_.assign(size_t{1} << bits, Slot{});
  shift_ = 64 - bits;
}

size_t PairRanks::position(uint64_t key) const noexcept {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);  // Fibonacci hashing
}

void PairRanks::try_insert(int32_t left, int32_t right, int32_t rank) {
  const uint64_t key = (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  const size_t mask = slots_.size() - 1;
  size_t i = position(key);
  for (; slots_[i].key != kEmpty; i = (i + 1) & mask)
    if (slots_[i].key == key) return;
  slots_[i] = {key, rank};
}

int32_t PairRanks::find(int32_t left, int32_t right) const noexcept {
  if (slots_.empty()) return -1;
  const uint64_t key = (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  const size_t mask = slots_.size() - 1;
  for (size_t i = position(key); slots_[i].key != kEmpty; i = (i + 1) & mask)
    if (slots_[i].key == key) return slots_[i].rank;
  return -1;
}

int32_t Vocab::byte_token(uint8_t byte) const {
  static constexpr char hex[] = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
  const int32_t id = find(std::string_view(name, 6));
  return id >= 0 ? id : find(std::string_view(reinterpret_cast<const char *>(&byte), 1));
}

Vocab Vocab::load(const gguf::File &file) {
  Vocab v;
  read_kind(file, v);
  read_tokens(file, v);
  read_merges(file, v);
  read_special_ids(file, v);
  detect_special_by_text(v);
  build_special_cache(v);
  build_pieces(file, v);
  return v;
}

}  // namespace vramfit::tokenizer
