// gguf::Writer: builds a GGUF v2/v3 file that llama.cpp and gguf::File both read.
//
// Metadata values are kept encoded (the bytes that follow the type tag in the file), so copying
// a value from another file is a byte copy, nested arrays included.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "common/fault.hpp"
#include "gguf/cursor.hpp"

namespace vramfit::gguf {
namespace {

constexpr uint32_t kMaxDims = 4;

// Appends little-endian encodings (the host is little-endian; GGUF v3 big-endian is unsupported).
class Encoder {
 public:
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    put_bytes(std::as_bytes(std::span(&value, 1)));
  }
  // resize + memcpy rather than insert: GCC 12 warns falsely (stringop-overflow) on small inserts.
  void put_bytes(std::span<const std::byte> raw) {
    if (raw.empty()) return;
    size_t at = bytes_.size();
    bytes_.resize(at + raw.size());
    std::memcpy(bytes_.data() + at, raw.data(), raw.size());
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    put_bytes(std::as_bytes(std::span(s.data(), s.size())));
  }
  void pad_to(uint64_t alignment) { bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment); }
  std::vector<std::byte> take() { return std::move(bytes_); }
  const std::vector<std::byte> &bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

template <class T>
std::vector<std::byte> encode_scalar(T value) {
  Encoder e;
  e.put(value);
  return e.take();
}

template <class T>
std::vector<std::byte> encode_array(ValueType element_type, const std::vector<T> &values) {
  Encoder e;
  e.put(static_cast<uint32_t>(element_type));
  e.put<uint64_t>(values.size());
  for (const T &v : values) e.put(v);
  return e.take();
}

// A file being written beside its destination; removed unless commit() renames it into place.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path &target) : target_(target) {
    std::string pattern = target.string() + ".tmp-XXXXXX";
    int fd = ::mkstemp(pattern.data());
    if (fd < 0)
      detail::fail(ErrorCode::io, "cannot create a temporary file beside '{}': {}", target.string(),
                   std::strerror(errno));
    path_ = pattern;
    ::fchmod(fd, 0644);
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
      ::close(fd);
      ::unlink(path_.c_str());
      detail::fail(ErrorCode::io, "cannot open '{}' for writing: {}", path_, std::strerror(errno));
    }
  }
  TempFile(const TempFile &) = delete;
  TempFile &operator=(const TempFile &) = delete;
  ~TempFile() {
    if (file_) std::fclose(file_);
    if (!committed_) ::unlink(path_.c_str());
  }

  void write(std::span<const std::byte> bytes) {
    if (bytes.empty()) return;
    if (detail::inject_fault(detail::Fault::file_write))
      errno = ENOSPC;  // an injected full disk
    else if (std::fwrite(bytes.data(), 1, bytes.size(), file_) == bytes.size())
      return;
    detail::fail(ErrorCode::io, "cannot write '{}': {}", path_, std::strerror(errno));
  }

  void commit() {
    // An injected failure is a disk that fills up while the buffered bytes are flushed.
    const bool disk_full = detail::inject_fault(detail::Fault::file_write);
    bool flushed = !disk_full && std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (disk_full) errno = ENOSPC;
    if (!flushed || !closed)
      detail::fail(ErrorCode::io, "cannot finish writing '{}': {}", path_, std::strerror(errno));
    if (std::rename(path_.c_str(), target_.c_str()) != 0)
      detail::fail(ErrorCode::io, "cannot rename '{}' to '{}': {}", path_, target_.string(),
                   std::strerror(errno));
    committed_ = true;
  }

 private:
  std::filesystem::path target_;
  std::string path_;
  std::FILE *file_ = nullptr;
  bool committed_ = false;
};

}  // namespace

struct Writer::Impl {
  struct Entry {
    std::string key;
    ValueType type;
    std::vector<std::byte> payload;  // the encoding after the type tag
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes;
    std::vector<std::byte> data;                            // when copied at add time
    std::function<void(std::span<std::byte> out)> produce;  // when produced at write time
  };

  uint64_t alignment;
  uint32_t version;
  std::vector<Entry> metadata;
  std::vector<Tensor> tensors;
  std::unordered_set<std::string> tensor_names;

  void put(std::string key, ValueType type, std::vector<std::byte> payload);
  void check_alignment_value(ValueType type, std::span<const std::byte> payload) const;
  Tensor &add(std::string name, GgmlType type, std::span<const int64_t> ne);
  std::vector<std::byte> header() const;
  void emit(const std::function<void(std::span<const std::byte>)> &write,
            const std::function<void(size_t, size_t)> &progress) const;
};

void Writer::Impl::put(std::string key, ValueType type, std::vector<std::byte> payload) {
  if (key == "general.alignment") check_alignment_value(type, payload);
  for (Entry &e : metadata)
    if (e.key == key) {
      e.type = type;
      e.payload = std::move(payload);
      return;
    }
  metadata.push_back(Entry{std::move(key), type, std::move(payload)});
}

// The data layout follows the writer's alignment, so the key must agree with it.
void Writer::Impl::check_alignment_value(ValueType type, std::span<const std::byte> payload) const {
  Value v(type, payload);
  if (!v.is_integer() || v.as_uint("general.alignment") != alignment)
    detail::fail(ErrorCode::invalid_argument,
                 "general.alignment must be the writer's alignment {} (construct the Writer with "
                 "the alignment you want)",
                 alignment);
}

Writer::Impl::Tensor &Writer::Impl::add(std::string name, GgmlType type, std::span<const int64_t> ne) {
  auto traits = type_traits(static_cast<uint32_t>(type));
  if (!traits)
    detail::fail(ErrorCode::invalid_argument, "tensor '{}': unknown ggml type id {}", name,
                 static_cast<uint32_t>(type));
  if (ne.empty() || ne.size() > kMaxDims)
    detail::fail(ErrorCode::invalid_argument, "tensor '{}': {} dimensions (1 to 4 allowed)", name,
                 ne.size());
  // Nonzero dimensions' product fits int64, as the reader requires.
  int64_t nonzero_product = 1;
  for (int64_t n : ne) {
    if (n < 0) detail::fail(ErrorCode::invalid_argument, "tensor '{}': negative dimension {}", name, n);
    if (n != 0 && __builtin_mul_overflow(nonzero_product, n, &nonzero_product))
      detail::fail(ErrorCode::invalid_argument, "tensor '{}': element count overflows", name);
  }
  if (ne[0] % traits->block_size != 0)
    detail::fail(ErrorCode::invalid_argument,
                 "tensor '{}' ({}): row length {} is not a multiple of the block size {}", name,
                 traits->name, ne[0], traits->block_size);
  uint64_t n_bytes = row_bytes(type, ne[0]);
  for (size_t d = 1; d < ne.size(); ++d)
    if (__builtin_mul_overflow(n_bytes, static_cast<uint64_t>(ne[d]), &n_bytes))
      detail::fail(ErrorCode::invalid_argument, "tensor '{}': byte size overflows", name);
  if (!tensor_names.insert(name).second)
    detail::fail(ErrorCode::invalid_argument, "duplicate tensor name '{}'", name);
  tensors.push_back(Tensor{std::move(name), type, {ne.begin(), ne.end()}, n_bytes, {}, {}});
  return tensors.back();
}

std::vector<std::byte> Writer::Impl::header() const {
  Encoder e;
  e.put_bytes(std::as_bytes(std::span("GGUF", 4)));
  e.put(version);
  e.put<uint64_t>(tensors.size());
  e.put<uint64_t>(metadata.size());
  for (const Entry &kv : metadata) {
    e.put_string(kv.key);
    e.put(static_cast<uint32_t>(kv.type));
    e.put_bytes(kv.payload);
  }
  uint64_t offset = 0;
  for (const Tensor &t : tensors) {
    e.put_string(t.name);
    e.put(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) e.put<uint64_t>(static_cast<uint64_t>(n));
    e.put(static_cast<uint32_t>(t.type));
    e.put(offset);
    offset += (t.n_bytes + alignment - 1) / alignment * alignment;
  }
  e.pad_to(alignment);
  return e.take();
}

// Header, then each tensor padded to the alignment (the last one too: llama.cpp reads the data
// section as a whole, padding included).
void Writer::Impl::emit(const std::function<void(std::span<const std::byte>)> &write,
                        const std::function<void(size_t, size_t)> &progress) const {
  write(header());
  const std::vector<std::byte> zeros(alignment);
  std::vector<std::byte> produced;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor &t = tensors[i];
    std::span<const std::byte> bytes = t.data;
    if (t.produce) {
      produced.assign(t.n_bytes, std::byte{0});
      t.produce(produced);
      bytes = produced;
    }
    write(bytes);
    write(std::span(zeros).first((alignment - t.n_bytes % alignment) % alignment));
    if (progress) progress(i + 1, tensors.size());
  }
}

Writer::Writer(uint64_t alignment, uint32_t version) : impl_(std::make_unique<Impl>()) {
  if (alignment == 0 || !std::has_single_bit(alignment) || alignment > UINT32_MAX)
    detail::fail(ErrorCode::invalid_argument, "GGUF alignment {} is not a power of two (u32)", alignment);
  if (version != 2 && version != 3)
    detail::fail(ErrorCode::invalid_argument, "the writer writes GGUF v2 or v3, not v{}", version);
  impl_->alignment = alignment;
  impl_->version = version;
  if (alignment != 32) set_u32("general.alignment", static_cast<uint32_t>(alignment));
}
Writer::Writer(Writer &&) noexcept = default;
Writer &Writer::operator=(Writer &&) noexcept = default;
Writer::~Writer() = default;

void Writer::set_u8(std::string key, uint8_t v) { impl_->put(std::move(key), ValueType::u8, encode_scalar(v)); }
void Writer::set_i8(std::string key, int8_t v) { impl_->put(std::move(key), ValueType::i8, encode_scalar(v)); }
void Writer::set_u16(std::string key, uint16_t v) { impl_->put(std::move(key), ValueType::u16, encode_scalar(v)); }
void Writer::set_i16(std::string key, int16_t v) { impl_->put(std::move(key), ValueType::i16, encode_scalar(v)); }
void Writer::set_u32(std::string key, uint32_t v) { impl_->put(std::move(key), ValueType::u32, encode_scalar(v)); }
void Writer::set_i32(std::string key, int32_t v) { impl_->put(std::move(key), ValueType::i32, encode_scalar(v)); }
void Writer::set_u64(std::string key, uint64_t v) { impl_->put(std::move(key), ValueType::u64, encode_scalar(v)); }
void Writer::set_i64(std::string key, int64_t v) { impl_->put(std::move(key), ValueType::i64, encode_scalar(v)); }
void Writer::set_f32(std::string key, float v) { impl_->put(std::move(key), ValueType::f32, encode_scalar(v)); }
void Writer::set_f64(std::string key, double v) { impl_->put(std::move(key), ValueType::f64, encode_scalar(v)); }
void Writer::set_bool(std::string key, bool v) {
  impl_->put(std::move(key), ValueType::boolean, encode_scalar<uint8_t>(v ? 1 : 0));
}

void Writer::set_string(std::string key, std::string_view v) {
  Encoder e;
  e.put_string(v);
  impl_->put(std::move(key), ValueType::string, e.take());
}

void Writer::set_strings(std::string key, const std::vector<std::string> &v) {
  Encoder e;
  e.put(static_cast<uint32_t>(ValueType::string));
  e.put<uint64_t>(v.size());
  for (const std::string &s : v) e.put_string(s);
  impl_->put(std::move(key), ValueType::array, e.take());
}

void Writer::set_f32_array(std::string key, const std::vector<float> &v) {
  impl_->put(std::move(key), ValueType::array, encode_array(ValueType::f32, v));
}
void Writer::set_i32_array(std::string key, const std::vector<int32_t> &v) {
  impl_->put(std::move(key), ValueType::array, encode_array(ValueType::i32, v));
}
void Writer::set_u32_array(std::string key, const std::vector<uint32_t> &v) {
  impl_->put(std::move(key), ValueType::array, encode_array(ValueType::u32, v));
}

void Writer::set_value(std::string key, const Value &v) {
  Encoder e;
  if (v.type() == ValueType::string) {
    e.put<uint64_t>(v.raw().size());
  } else if (v.type() == ValueType::array) {
    e.put(static_cast<uint32_t>(v.array_type()));
    e.put(v.array_size());
  }
  e.put_bytes(v.raw());  // scalars, characters, or the already-encoded array elements
  impl_->put(std::move(key), v.type(), e.take());
}

void Writer::remove(std::string_view key) {
  std::erase_if(impl_->metadata, [&](const Impl::Entry &e) { return e.key == key; });
}

void Writer::add_tensor(std::string name, GgmlType type, std::span<const int64_t> ne,
                        std::span<const std::byte> data) {
  Impl::Tensor &t = impl_->add(std::move(name), type, ne);
  if (data.size() != t.n_bytes) {
    std::string label = std::move(t.name);
    uint64_t needed = t.n_bytes;
    impl_->tensor_names.erase(label);
    impl_->tensors.pop_back();
    detail::fail(ErrorCode::invalid_argument, "tensor '{}': {} bytes given, its shape needs {}",
                 label, data.size(), needed);
  }
  t.data.assign(data.begin(), data.end());
}

void Writer::add_tensor(std::string name, GgmlType type, std::span<const int64_t> ne,
                        std::function<void(std::span<std::byte> out)> produce) {
  if (!produce) detail::fail(ErrorCode::invalid_argument, "tensor '{}': no producer given", name);
  impl_->add(std::move(name), type, ne).produce = std::move(produce);
}

void Writer::write_file(const std::filesystem::path &path,
                        const std::function<void(size_t done, size_t total)> &progress) const {
  TempFile file(path);
  impl_->emit([&](std::span<const std::byte> bytes) { file.write(bytes); }, progress);
  file.commit();
}

std::vector<std::byte> Writer::write_bytes() const {
  std::vector<std::byte> out;
  impl_->emit([&](std::span<const std::byte> bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); },
              {});
  return out;
}

}  // namespace vramfit::gguf
