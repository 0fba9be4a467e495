// Bounds-checked reading of untrusted GGUF bytes.
//
// Every read checks the bytes left before touching memory, so a corrupt or truncated file ends in
// an Error naming the file offset, never in a read past the end. Counts and lengths are checked
// against the bytes left *before* anything is allocated for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/error.hpp"
#include "vramfit/gguf.hpp"

namespace vramfit::gguf {

class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, std::string_view file_name, uint64_t pos = 0) noexcept
      : bytes_(bytes), file_name_(file_name), pos_(pos) {}

  uint64_t pos() const noexcept { return pos_; }
  uint64_t remaining() const noexcept { return bytes_.size() - pos_; }
  std::span<const std::byte> bytes() const noexcept { return bytes_; }
  std::string_view file_name() const noexcept { return file_name_; }

  // Throws Error(format) "<file>: offset N: <message>".
  template <class... Args>
  [[noreturn]] void fail_at(uint64_t offset, fmt::format_string<Args...> f, Args &&...args) const {
    detail::fail(ErrorCode::format, "{}: offset {}: {}", file_name_, offset,
                 fmt::format(f, std::forward<Args>(args)...));
  }

  std::span<const std::byte> take(uint64_t n, std::string_view what) {
    if (n > remaining())
      fail_at(pos_, "{} needs {} bytes but only {} remain (truncated or corrupt file)", what, n,
              remaining());
    auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  template <class T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, take(sizeof(T), what).data(), sizeof(T));
    return value;
  }

  // A GGUF string: u64 length, then the characters (no terminator).
  std::string_view read_string(std::string_view what) {
    uint64_t at = pos_;
    auto length = read<uint64_t>(what);
    if (length > remaining())
      fail_at(at, "{} has length {} but only {} bytes remain (truncated or corrupt file)", what,
              length, remaining());
    auto chars = take(length, what);
    return {reinterpret_cast<const char *>(chars.data()), chars.size()};
  }

 private:
  std::span<const std::byte> bytes_;
  std::string_view file_name_;
  uint64_t pos_;
};

// Bytes of one scalar of `type`; 0 for string and array (variable size).
uint64_t scalar_size(ValueType type) noexcept;
bool is_known_value_type(uint32_t id) noexcept;

// Reads and validates one value of `type` at the cursor (arrays: every element, recursively).
// `what` names the key for error messages.
Value parse_value(Cursor &cursor, ValueType type, std::string_view what, int depth = 0);

}  // namespace vramfit::gguf
