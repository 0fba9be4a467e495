// gguf::File: parses and validates a GGUF v2/v3 file held in a Mapping.
//
// Layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/value pairs, the tensor
// infos, padding to `general.alignment`, then the data section. Everything is checked against
// the bytes present; only the data section may be missing (header-only files are legal).
#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "gguf/cursor.hpp"
#include "gguf/mapping.hpp"

namespace vramfit::gguf {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
// Smallest possible encodings, used to reject counts the file cannot hold before allocating.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;        // empty key, type, a u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims = 0, type, offset
constexpr uint32_t kMaxDims = 4;

// An integer value converted to T, refusing values T cannot hold.
template <class T>
T narrow_integer(const Value &v, const std::string &what) {
  if constexpr (std::is_signed_v<T>) {
    int64_t wide = v.as_int(what);
    if (!std::in_range<T>(wide))
      detail::fail(ErrorCode::format, "{}: value {} does not fit the requested type", what, wide);
    return static_cast<T>(wide);
  } else {
    uint64_t wide = v.as_uint(what);
    if (!std::in_range<T>(wide))
      detail::fail(ErrorCode::format, "{}: value {} does not fit the requested type", what, wide);
    return static_cast<T>(wide);
  }
}

uint64_t align_up(uint64_t x, uint64_t alignment) { return (x + alignment - 1) / alignment * alignment; }

}  // namespace

struct File::Impl {
  std::string name;
  Mapping mapping;
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  uint64_t tensor_bytes = 0;
  std::vector<KeyValue> metadata;
  std::vector<TensorInfo> tensors;
  std::vector<uint64_t> tensor_info_offsets;  // where each tensor info starts, for messages
  std::unordered_map<std::string_view, size_t> key_index;
  std::unordered_map<std::string_view, size_t> tensor_index;

  void parse();
  void read_header(Cursor &c, uint64_t &n_tensors, uint64_t &n_kv);
  void read_metadata(Cursor &c, uint64_t n_kv);
  void read_alignment(const Cursor &c);
  void read_tensor_infos(Cursor &c, uint64_t n_tensors);
  TensorInfo read_tensor_info(Cursor &c);
  void place_tensors(const Cursor &c);
  const Value &require(std::string_view key) const;
  std::string key_label(std::string_view key) const {
    return fmt::format("{}: metadata key '{}'", name, key);
  }
};

void File::Impl::parse() {
  Cursor c(mapping.bytes(), name);
  uint64_t n_tensors = 0, n_kv = 0;
  read_header(c, n_tensors, n_kv);
  read_metadata(c, n_kv);
  read_alignment(c);
  read_tensor_infos(c, n_tensors);
  data_offset = align_up(c.pos(), alignment);
  place_tensors(c);
}

void File::Impl::read_header(Cursor &c, uint64_t &n_tensors, uint64_t &n_kv) {
  if (c.remaining() < 4) c.fail_at(0, "file of {} bytes is too small to be GGUF", c.remaining());
  auto magic = c.take(4, "magic");
  if (std::memcmp(magic.data(), "GGUF", 4) != 0)
    c.fail_at(0, "not a GGUF file: magic is {:02x} {:02x} {:02x} {:02x}, expected 'GGUF'",
              std::to_integer<int>(magic[0]), std::to_integer<int>(magic[1]),
              std::to_integer<int>(magic[2]), std::to_integer<int>(magic[3]));
  version = c.read<uint32_t>("version");
  if (version == 1)
    detail::fail(ErrorCode::unsupported,
                 "{}: offset 4: GGUF v1 is not supported (obsolete 32-bit layout); re-convert the "
                 "model with a current llama.cpp, which writes GGUF v3",
                 name);
  if (__builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3)
    detail::fail(ErrorCode::unsupported, "{}: offset 4: big-endian GGUF is not supported", name);
  if (version != 2 && version != 3)
    detail::fail(ErrorCode::unsupported,
                 "{}: offset 4: unknown GGUF version {} (vramfit reads v2 and v3)", name, version);
  n_tensors = c.read<uint64_t>("tensor count");
  n_kv = c.read<uint64_t>("metadata count");
}

void File::Impl::read_metadata(Cursor &c, uint64_t n_kv) {
  if (n_kv > c.remaining() / kMinKeyValueBytes)
    c.fail_at(16, "metadata count {} cannot fit in the {} bytes of the file", n_kv,
              c.bytes().size());
  metadata.reserve(n_kv);
  key_index.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    uint64_t at = c.pos();
    auto key = c.read_string("metadata key");
    auto type_id = c.read<uint32_t>("metadata value type");
    if (!is_known_value_type(type_id))
      c.fail_at(at, "metadata key '{}' has unknown value type {}", key, type_id);
    Value value = parse_value(c, static_cast<ValueType>(type_id), key);
    if (!key_index.emplace(key, metadata.size()).second)
      c.fail_at(at, "duplicate metadata key '{}'", key);
    metadata.push_back(KeyValue{key, value, at});
  }
}

void File::Impl::read_alignment(const Cursor &c) {
  auto it = key_index.find("general.alignment");
  if (it == key_index.end()) return;
  const KeyValue &kv = metadata[it->second];
  uint64_t a = kv.value.as_uint(key_label(kv.key));
  // GGUF stores it as u32; a larger value could only overflow offset arithmetic.
  if (a == 0 || !std::has_single_bit(a) || a > std::numeric_limits<uint32_t>::max())
    c.fail_at(kv.file_offset, "general.alignment is {}; it must be a power of two (u32)", a);
  alignment = a;
}

void File::Impl::read_tensor_infos(Cursor &c, uint64_t n_tensors) {
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    c.fail_at(8, "tensor count {} cannot fit in the {} bytes left after the metadata", n_tensors,
              c.remaining());
  tensors.reserve(n_tensors);
  tensor_info_offsets.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    tensor_info_offsets.push_back(c.pos());
    tensors.push_back(read_tensor_info(c));
  }
  // Index only once the vector no longer moves: the keys view the names it owns.
  tensor_index.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensor_index.emplace(tensors[i].name, i).second)
      c.fail_at(tensor_info_offsets[i], "duplicate tensor name '{}'", tensors[i].name);
}

TensorInfo File::Impl::read_tensor_info(Cursor &c) {
  uint64_t at = c.pos();
  TensorInfo t;
  t.name = std::string(c.read_string("tensor name"));
  t.n_dims = c.read<uint32_t>("tensor n_dims");
  if (t.n_dims > kMaxDims)
    c.fail_at(at, "tensor '{}' has {} dimensions; GGUF allows at most {}", t.name, t.n_dims, kMaxDims);
  // The product of the nonzero dimensions bounds every partial product that n_elements() and
  // n_rows() compute, so checking it once makes both safe (a zero dimension must not hide an
  // overflow of the others).
  int64_t nonzero_product = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    auto ne = c.read<uint64_t>("tensor shape");
    if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      c.fail_at(at, "tensor '{}': dimension {} is {}, too large", t.name, d, ne);
    t.ne[d] = static_cast<int64_t>(ne);
    if (ne != 0 && __builtin_mul_overflow(nonzero_product, t.ne[d], &nonzero_product))
      c.fail_at(at, "tensor '{}': element count overflows 64 bits", t.name);
  }
  auto type_id = c.read<uint32_t>("tensor type");
  auto traits = type_traits(type_id);
  if (!traits) c.fail_at(at, "tensor '{}' has unknown ggml type id {}", t.name, type_id);
  t.type = static_cast<GgmlType>(type_id);
  t.offset = c.read<uint64_t>("tensor offset");

  if (t.ne[0] % traits->block_size != 0)
    c.fail_at(at, "tensor '{}' ({}): row length {} is not a multiple of the block size {}", t.name,
              traits->name, t.ne[0], traits->block_size);
  uint64_t row = static_cast<uint64_t>(t.ne[0]) / traits->block_size * traits->type_size;
  if (__builtin_mul_overflow(row, static_cast<uint64_t>(t.n_rows()), &t.n_bytes))
    c.fail_at(at, "tensor '{}': byte size overflows 64 bits", t.name);
  return t;
}

void File::Impl::place_tensors(const Cursor &c) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorInfo &t = tensors[i];
    if (t.offset % alignment != 0)
      c.fail_at(tensor_info_offsets[i], "tensor '{}': data offset {} is not a multiple of the alignment {}",
                t.name, t.offset, alignment);
    uint64_t end = 0;
    if (__builtin_add_overflow(data_offset, t.offset, &t.file_offset) ||
        __builtin_add_overflow(t.file_offset, t.n_bytes, &end))
      c.fail_at(tensor_info_offsets[i], "tensor '{}': data offset {} overflows 64 bits", t.name,
                t.offset);
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo &prev = tensors[order[k - 1]];
    const TensorInfo &next = tensors[order[k]];
    if (prev.offset + prev.n_bytes > next.offset)
      c.fail_at(tensor_info_offsets[order[k]],
                "tensors '{}' (data bytes {}..{}) and '{}' (from {}) overlap", prev.name,
                prev.offset, prev.offset + prev.n_bytes, next.name, next.offset);
  }
  for (const TensorInfo &t : tensors) tensor_bytes += t.n_bytes;
}

const Value &File::Impl::require(std::string_view key) const {
  auto it = key_index.find(key);
  if (it == key_index.end()) detail::fail(ErrorCode::format, "{} is missing", key_label(key));
  return metadata[it->second].value;
}

// ---- File ----

File File::open(const std::filesystem::path &path) {
  auto impl = std::make_unique<Impl>();
  impl->name = path.string();
  impl->mapping = Mapping::map_file(path);
  impl->parse();
  return File(std::move(impl));
}

File File::from_bytes(std::span<const std::byte> bytes, std::string name) {
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(name);
  impl->mapping = Mapping::copy_of(bytes);
  impl->parse();
  return File(std::move(impl));
}

File::File(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
File::File(File &&) noexcept = default;
File &File::operator=(File &&) noexcept = default;
File::~File() = default;

const std::string &File::name() const noexcept { return impl_->name; }
uint32_t File::version() const noexcept { return impl_->version; }
uint64_t File::alignment() const noexcept { return impl_->alignment; }
uint64_t File::data_offset() const noexcept { return impl_->data_offset; }
uint64_t File::file_size() const noexcept { return impl_->mapping.bytes().size(); }

std::span<const KeyValue> File::metadata() const noexcept { return impl_->metadata; }

const Value *File::find(std::string_view key) const noexcept {
  auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->metadata[it->second].value;
}

template <class T>
T File::get(std::string_view key) const {
  const Value &v = impl_->require(key);
  std::string what = impl_->key_label(key);
  if constexpr (std::is_same_v<T, bool>) {
    return v.as_bool(what);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return v.as_string(what);
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v.as_float(what));
  } else {
    return narrow_integer<T>(v, what);
  }
}

std::vector<std::string_view> File::get_strings(std::string_view key) const {
  const Value &v = impl_->require(key);
  if (v.type() != ValueType::array || v.array_type() != ValueType::string)
    detail::fail(ErrorCode::format, "{}: expected an array of strings", impl_->key_label(key));
  std::vector<std::string_view> out;
  out.reserve(v.array_size());  // validated against the file size when it was opened
  v.for_each_element([&](uint64_t, const Value &e) { out.push_back(e.as_string()); });
  return out;
}

template <class T>
std::vector<T> File::get_array(std::string_view key) const {
  const Value &v = impl_->require(key);
  std::string what = impl_->key_label(key);
  if (v.type() != ValueType::array || scalar_size(v.array_type()) == 0)
    detail::fail(ErrorCode::format, "{}: expected an array of numbers", what);
  std::vector<T> out;
  out.reserve(v.array_size());
  for (uint64_t i = 0; i < v.array_size(); ++i) {
    Value e = v.element(i);
    if constexpr (std::is_same_v<T, bool>) {
      out.push_back(e.as_bool(what));
    } else if constexpr (std::is_floating_point_v<T>) {
      out.push_back(static_cast<T>(e.as_float(what)));
    } else {
      out.push_back(narrow_integer<T>(e, what));
    }
  }
  return out;
}

#define VRAMFIT_GGUF_INSTANTIATE(T)                               \
  template VRAMFIT_API T File::get<T>(std::string_view) const; \
  template VRAMFIT_API std::vector<T> File::get_array<T>(std::string_view) const;
VRAMFIT_GGUF_INSTANTIATE(uint8_t)
VRAMFIT_GGUF_INSTANTIATE(int8_t)
VRAMFIT_GGUF_INSTANTIATE(uint16_t)
VRAMFIT_GGUF_INSTANTIATE(int16_t)
VRAMFIT_GGUF_INSTANTIATE(uint32_t)
VRAMFIT_GGUF_INSTANTIATE(int32_t)
VRAMFIT_GGUF_INSTANTIATE(uint64_t)
VRAMFIT_GGUF_INSTANTIATE(int64_t)
VRAMFIT_GGUF_INSTANTIATE(float)
VRAMFIT_GGUF_INSTANTIATE(double)
VRAMFIT_GGUF_INSTANTIATE(bool)
#undef VRAMFIT_GGUF_INSTANTIATE
template VRAMFIT_API std::string_view File::get<std::string_view>(std::string_view) const;

std::span<const TensorInfo> File::tensors() const noexcept { return impl_->tensors; }

const TensorInfo *File::find_tensor(std::string_view name) const noexcept {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

const TensorInfo &File::tensor(std::string_view name) const {
  if (const TensorInfo *t = find_tensor(name)) return *t;
  detail::fail(ErrorCode::format, "{}: tensor '{}' is not in the file", impl_->name, name);
}

bool File::has_data(const TensorInfo &tensor) const noexcept {
  uint64_t size = file_size();
  return tensor.n_bytes <= size && tensor.file_offset <= size - tensor.n_bytes;
}

std::span<const std::byte> File::data(const TensorInfo &tensor) const {
  if (!has_data(tensor))
    detail::fail(ErrorCode::format,
                 "{}: tensor '{}' needs file bytes {}..{} but the file has {} bytes (truncated or "
                 "header-only file: its data section is absent)",
                 impl_->name, tensor.name, tensor.file_offset, tensor.file_offset + tensor.n_bytes,
                 file_size());
  return impl_->mapping.bytes().subspan(tensor.file_offset, tensor.n_bytes);
}

uint64_t File::tensor_data_bytes() const noexcept { return impl_->tensor_bytes; }

}  // namespace vramfit::gguf
