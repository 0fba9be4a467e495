#include "gguf/mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "common/error.hpp"
#include "common/fault.hpp"

namespace vramfit::gguf {
namespace {

constexpr std::align_val_t kOwnedAlignment{64};

// Closes the descriptor on every path out of map_file.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Mapping Mapping::map_file(const std::filesystem::path &path) {
  FileDescriptor file{detail::inject_fault(detail::Fault::file_open) ? (errno = EIO, -1)
                                                                     : ::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0)
    detail::fail(ErrorCode::io, "cannot open '{}': {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    detail::fail(ErrorCode::io, "cannot stat '{}': {}", path.string(), std::strerror(errno));
  if (!S_ISREG(st.st_mode)) detail::fail(ErrorCode::io, "'{}' is not a regular file", path.string());

  Mapping mapping;
  mapping.size_ = static_cast<size_t>(st.st_size);
  if (mapping.size_ == 0) return mapping;  // nothing to map; the parser reports the empty file
  void *p = detail::inject_fault(detail::Fault::file_map)
                ? (errno = ENOMEM, MAP_FAILED)
                : ::mmap(nullptr, mapping.size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
  if (p == MAP_FAILED)
    detail::fail(ErrorCode::io, "cannot memory-map '{}' ({} bytes): {}", path.string(),
                 mapping.size_, std::strerror(errno));
  mapping.kind_ = Kind::mapped;
  mapping.data_ = static_cast<std::byte *>(p);
  return mapping;
}

Mapping Mapping::copy_of(std::span<const std::byte> bytes) {
  Mapping mapping;
  mapping.size_ = bytes.size();
  if (bytes.empty()) return mapping;
  mapping.data_ = static_cast<std::byte *>(::operator new(bytes.size(), kOwnedAlignment));
  mapping.kind_ = Kind::owned;
  std::memcpy(mapping.data_, bytes.data(), bytes.size());
  return mapping;
}

Mapping::Mapping(Mapping &&other) noexcept
    : kind_(std::exchange(other.kind_, Kind::none)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Mapping &Mapping::operator=(Mapping &&other) noexcept {
  if (this != &other) {
    release();
    kind_ = std::exchange(other.kind_, Kind::none);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() { release(); }

void Mapping::release() noexcept {
  if (kind_ == Kind::mapped) ::munmap(data_, size_);
  if (kind_ == Kind::owned) ::operator delete(data_, kOwnedAlignment);
  kind_ = Kind::none;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace vramfit::gguf
