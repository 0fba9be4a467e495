// GGUF files: a from-scratch reader (memory-mapped, validated) and a writer.
//
// Reading never copies tensor data: tensors are views into the map. Strings in metadata are
// views too. A file whose data section is missing (a "header-only" file) still opens; asking for
// the bytes of a tensor that is not in the file is an Error, never a crash.
//
// Thread-safety: a File is immutable after open(); any number of threads may read it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.hpp"
#include "vramfit/export.hpp"
#include "vramfit/types.hpp"

namespace vramfit::gguf {

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
VRAMFIT_API std::string_view value_type_name(ValueType type) noexcept;

// A metadata value: a small view into the mapped file, valid while its File lives.
class VRAMFIT_API Value {
 public:
  ValueType type() const noexcept { return type_; }

  bool is_integer() const noexcept;         // u8..i64 (not bool)
  bool is_float() const noexcept;           // f32, f64
  // Converting accessors; throw Error(format) naming `what` when the type does not fit or the
  // value does not fit the target range.
  int64_t as_int(std::string_view what = {}) const;
  uint64_t as_uint(std::string_view what = {}) const;
  double as_float(std::string_view what = {}) const;  // any integer or float
  bool as_bool(std::string_view what = {}) const;
  std::string_view as_string(std::string_view what = {}) const;

  // Arrays (type() == array). Elements are read on demand; element access for fixed-size
  // element types is O(1); for strings and nested arrays use for_each_element (one pass).
  ValueType array_type() const noexcept { return array_type_; }
  uint64_t array_size() const noexcept { return count_; }
  Value element(uint64_t i) const;  // throws for string / array element types
  void for_each_element(const std::function<void(uint64_t index, const Value &element)> &fn) const;

  // Raw bytes of the encoded value (scalars: the value; strings: the characters; arrays of
  // fixed-size elements: count*size bytes). Used by the writer to copy values verbatim.
  std::span<const std::byte> raw() const noexcept { return raw_; }

  // Construction is the reader's business.
  Value(ValueType type, std::span<const std::byte> raw, ValueType array_type = ValueType::u8,
        uint64_t count = 0) noexcept
      : type_(type), array_type_(array_type), count_(count), raw_(raw) {}

 private:
  ValueType type_;
  ValueType array_type_;
  uint64_t count_;
  std::span<const std::byte> raw_;
};

struct KeyValue {
  std::string_view key;
  Value value;
  uint64_t file_offset;  // where the key/value pair starts in the file
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the row length (contiguous dimension)
  uint64_t offset = 0;       // relative to the start of the data section, as stored
  uint64_t file_offset = 0;  // absolute offset of the first byte in the file
  uint64_t n_bytes = 0;      // exact size of the tensor's data

  int64_t n_elements() const noexcept { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const noexcept { return ne[1] * ne[2] * ne[3]; }
};

class VRAMFIT_API File {
 public:
  // Memory-maps and validates the file. Throws Error(io) when it cannot be opened, Error(format)
  // for invalid content (message names the problem and file offset, or the tensor), and
  // Error(unsupported) for GGUF v1 and unknown versions.
  static File open(const std::filesystem::path &path);
  // Parses an in-memory image (copied into the File). Same validation; used by tests and fuzzing.
  static File from_bytes(std::span<const std::byte> bytes, std::string name = "<memory>");

  File(File &&) noexcept;
  File &operator=(File &&) noexcept;
  ~File();

  const std::string &name() const noexcept;  // the path, or the name given to from_bytes
  uint32_t version() const noexcept;
  uint64_t alignment() const noexcept;    // general.alignment, default 32
  uint64_t data_offset() const noexcept;  // absolute offset of the data section
  uint64_t file_size() const noexcept;    // bytes actually present

  // ---- metadata ----
  std::span<const KeyValue> metadata() const noexcept;  // in file order
  const Value *find(std::string_view key) const noexcept;
  bool has(std::string_view key) const noexcept { return find(key) != nullptr; }
  // Typed lookups: T is an arithmetic type, bool, or std::string_view. Integers convert between
  // widths with range checks. Throw Error(format) naming the key when missing or mistyped.
  template <class T>
  T get(std::string_view key) const;
  template <class T>
  T get_or(std::string_view key, T fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }
  // Arrays: strings are views into the map (no copy of the characters); numbers are converted.
  std::vector<std::string_view> get_strings(std::string_view key) const;
  template <class T>
  std::vector<T> get_array(std::string_view key) const;

  // ---- tensors ----
  std::span<const TensorInfo> tensors() const noexcept;  // in file order
  const TensorInfo *find_tensor(std::string_view name) const noexcept;
  const TensorInfo &tensor(std::string_view name) const;  // throws Error(format) when absent
  // True when the tensor's bytes are inside the file (false for header-only files).
  bool has_data(const TensorInfo &tensor) const noexcept;
  // The tensor's bytes, a view into the map; throws Error(format) naming the tensor when its
  // range lies past the end of the file.
  std::span<const std::byte> data(const TensorInfo &tensor) const;
  uint64_t tensor_data_bytes() const noexcept;  // sum of n_bytes of every tensor

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// Builds a GGUF v3 (or v2) file: metadata in insertion order, then tensor infos, then data,
// each tensor aligned to `alignment`. Setting a key twice replaces its value.
class VRAMFIT_API Writer {
 public:
  explicit Writer(uint64_t alignment = 32, uint32_t version = 3);
  Writer(Writer &&) noexcept;
  Writer &operator=(Writer &&) noexcept;
  ~Writer();

  void set_u8(std::string key, uint8_t v);
  void set_i8(std::string key, int8_t v);
  void set_u16(std::string key, uint16_t v);
  void set_i16(std::string key, int16_t v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_i64(std::string key, int64_t v);
  void set_f32(std::string key, float v);
  void set_f64(std::string key, double v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string_view v);
  void set_strings(std::string key, const std::vector<std::string> &v);
  void set_f32_array(std::string key, const std::vector<float> &v);
  void set_i32_array(std::string key, const std::vector<int32_t> &v);
  void set_u32_array(std::string key, const std::vector<uint32_t> &v);
  // Copies a value read from another file (any type, nested arrays included).
  void set_value(std::string key, const Value &v);
  void remove(std::string_view key);

  // Adds a tensor whose bytes are copied now (n_bytes must equal the type's size for ne).
  void add_tensor(std::string name, GgmlType type, std::span<const int64_t> ne,
                  std::span<const std::byte> data);
  // Adds a tensor whose bytes are produced at write time into `out` (exact size), so a large
  // model can be written without holding every tensor in memory.
  void add_tensor(std::string name, GgmlType type, std::span<const int64_t> ne,
                  std::function<void(std::span<std::byte> out)> produce);

  // Writes to `path` atomically: a temporary file beside it, renamed over `path` at the end.
  // `progress(i, n)` (optional) is called after each tensor. Throws Error(io) on failure and
  // leaves no partial file behind.
  void write_file(const std::filesystem::path &path,
                  const std::function<void(size_t done, size_t total)> &progress = {}) const;
  std::vector<std::byte> write_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vramfit::gguf
