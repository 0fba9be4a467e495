// libFuzzer: the GGUF reader from bytes (header-only and truncated files included), then what
// reads a header: the planner's ModelShape, the tokenizer's vocabulary, the chat template.
// Every failure must be a vramfit::Error; anything else escaping (std::bad_alloc,
// std::length_error) or a sanitizer report is a crash.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.hpp"
#include "tokenizer/tokenizer.hpp"
#include "vramfit/chat.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

namespace {

using namespace vramfit;

// Reads every value the way consumers do, so a lying count or length is found here.
void read_value(const gguf::Value &v) {
  try {
    switch (v.type()) {
      case gguf::ValueType::string: (void)v.as_string(); break;
      case gguf::ValueType::array:
        v.for_each_element([](uint64_t, const gguf::Value &e) { read_value(e); });
        if (v.array_size() > 0 && v.array_type() != gguf::ValueType::string && v.array_type() != gguf::ValueType::array)
          read_value(v.element(v.array_size() - 1));
        break;
      case gguf::ValueType::boolean: (void)v.as_bool(); break;
      case gguf::ValueType::f32: case gguf::ValueType::f64: (void)v.as_float(); break;
      case gguf::ValueType::u64: (void)v.as_uint(); break;
      default: (void)v.as_int(); break;
    }
  } catch (const Error &) {  // out of range for the accessor: a clean refusal
  }
}

void read_file(const gguf::File &file) {
  for (const gguf::KeyValue &kv : file.metadata()) {
    read_value(kv.value);
    if (file.find(kv.key) == nullptr) fuzz::violated("a metadata key is not found by its own name");
  }
  uint64_t sum = 0;
  for (const gguf::TensorInfo &t : file.tensors()) {
    if (file.find_tensor(t.name) == nullptr) fuzz::violated("a tensor is not found by its own name");
    if (file.has_data(t)) {
      auto bytes = file.data(t);
      if (bytes.size() != t.n_bytes) fuzz::violated("tensor data size differs from n_bytes");
      if (!bytes.empty()) sum += static_cast<uint8_t>(bytes.back());  // touch the last byte
    }
  }
  (void)sum;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::write_seeds_if_asked([](fuzz::SeedWriter &seeds) {
    // Header-only files whole; of every other model and vocabulary its first 64 KiB (the header,
    // or a truncated one).
    for (const auto &path : fuzz::shared_files("models/header-only", ".gguf")) seeds.add(*fuzz::read_file(path));
    for (const auto &path : fuzz::shared_files("models", ".gguf")) seeds.add(*fuzz::read_file(path, 64 << 10));
    for (const auto &path : fuzz::shared_files("vocab", ".gguf")) seeds.add(*fuzz::read_file(path, 64 << 10));
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::optional<gguf::File> file;
  try {
    file.emplace(gguf::File::from_bytes({reinterpret_cast<const std::byte *>(data), size}, "fuzz.gguf"));
  } catch (const Error &) {
    return 0;
  }
  read_file(*file);
  fuzz::refused_or_done([&] { (void)ModelShape::from_gguf(*file); });
  fuzz::refused_or_done([&] {
    if (!file->has("tokenizer.ggml.model")) return;
    const auto tok = tokenizer::Tokenizer::from_gguf(*file);
    const auto ids = tok.encode("Hello world, <s> 123 \xE2\x96\x81\xF0\x9F\x98\x80", true, true);
    (void)tok.decode(ids, true);
    for (int32_t id = 0; id < tok.n_vocab() && id < 64; ++id) (void)tok.token_to_piece(id, true);
  });
  fuzz::refused_or_done([&] {
    const auto chat = ChatTemplate::from_gguf(*file);
    (void)chat.apply(std::vector<ChatMessage>{{"user", "hi"}});
  });
  return 0;
}
