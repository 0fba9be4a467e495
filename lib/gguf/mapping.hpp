// The bytes of a GGUF file: a read-only memory map, or an owned copy (File::from_bytes).
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace vramfit::gguf {

class Mapping {
 public:
  // Maps the whole file read-only. Throws Error(io) naming the path and the OS reason.
  static Mapping map_file(const std::filesystem::path &path);
  // Copies `bytes` into a 64-byte aligned buffer (so tensor data is as aligned as in a map).
  static Mapping copy_of(std::span<const std::byte> bytes);

  Mapping() = default;
  Mapping(Mapping &&other) noexcept;
  Mapping &operator=(Mapping &&other) noexcept;
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  ~Mapping();

  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  enum class Kind { none, mapped, owned };
  void release() noexcept;

  Kind kind_ = Kind::none;
  std::byte *data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vramfit::gguf
