// Reader of VFDQ v1 files (../shared/reference/dequant/*.dequant.bin): every tensor of a model
// dequantized by llama.cpp, as its first two rows plus per-row sums and sums of squares.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace vramfit::test {

struct VfdqTensor {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<uint64_t> ne;
  uint64_t n_rows = 0;
  std::vector<float> row0, row1;                 // ne[0] floats each
  std::vector<double> row_sum, row_sumsq;        // n_rows each
};

class VfdqCursor {
 public:
  explicit VfdqCursor(std::vector<char> bytes) : bytes_(std::move(bytes)) {}
  template <class T>
  T scalar() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  template <class T>
  std::vector<T> array(uint64_t n) {
    std::vector<T> v(n);
    take(v.data(), n * sizeof(T));
    return v;
  }
  std::string string(uint32_t n) {
    std::string s(n, '\0');
    take(s.data(), n);
    return s;
  }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  void take(void *dst, uint64_t n) {
    if (n > bytes_.size() - pos_) throw std::runtime_error("VFDQ file truncated at byte " + std::to_string(pos_));
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::vector<char> bytes_;
  size_t pos_ = 0;
};

inline std::vector<VfdqTensor> read_vfdq(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  VfdqCursor cur(std::vector<char>(std::istreambuf_iterator<char>(in), {}));
  if (cur.string(4) != "VFDQ") throw std::runtime_error("not a VFDQ file: " + path.string());
  if (cur.scalar<uint32_t>() != 1) throw std::runtime_error("unknown VFDQ version: " + path.string());
  std::vector<VfdqTensor> tensors(cur.scalar<uint32_t>());
  for (VfdqTensor &t : tensors) {
    t.name = cur.string(cur.scalar<uint32_t>());
    t.ggml_type = cur.scalar<uint32_t>();
    t.ne = cur.array<uint64_t>(cur.scalar<uint32_t>());
    t.n_rows = cur.scalar<uint64_t>();
    t.row0 = cur.array<float>(t.ne.at(0));
    t.row1 = cur.array<float>(t.ne.at(0));
    t.row_sum = cur.array<double>(t.n_rows);
    t.row_sumsq = cur.array<double>(t.n_rows);
  }
  if (!cur.at_end()) throw std::runtime_error("trailing bytes in VFDQ file: " + path.string());
  return tensors;
}

}  // namespace vramfit::test
