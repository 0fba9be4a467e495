// CPU kernels on real rows: every tensor of the synthetic models that llama.cpp quantized
// (synth-*.gguf, all block formats), against the scalar reference, llama.cpp's own dequantized
// rows (reference/dequant), and the f64 bounds of cpu_test_util.hpp.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include "cpu/ops.hpp"
#include "cpu_test_util.hpp"
#include "test_data.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;
using namespace vramfit::test;

namespace {

const char *const kModels[] = {"synth-F32",    "synth-F16",    "synth-Q4_0",   "synth-Q8_0",   "synth-Q2_K",
                               "synth-Q3_K_S", "synth-Q3_K_M", "synth-Q4_K_S", "synth-Q4_K_M", "synth-Q5_K_M",
                               "synth-Q6_K",   "synth-gptoss-MXFP4_MOE"};

// Row 0 of every tensor as llama.cpp dequantized it (VFDQ v1, see ../shared/README.md).
std::map<std::string, std::vector<float>> llama_cpp_row0(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  auto read = [&](void *p, size_t n) { in.read(static_cast<char *>(p), static_cast<std::streamsize>(n)); };
  char magic[4];
  uint32_t version = 0, n_tensors = 0;
  read(magic, 4);
  read(&version, 4);
  read(&n_tensors, 4);
  REQUIRE(std::string(magic, 4) == "VFDQ");
  std::map<std::string, std::vector<float>> rows;
  for (uint32_t t = 0; t < n_tensors && in; ++t) {
    uint32_t name_len = 0, type = 0, n_dims = 0;
    read(&name_len, 4);
    std::string name(name_len, '\0');
    read(name.data(), name_len);
    read(&type, 4);
    read(&n_dims, 4);
    std::vector<uint64_t> ne(n_dims);
    read(ne.data(), 8 * n_dims);
    uint64_t n_rows = 0;
    read(&n_rows, 8);
    std::vector<float> row0(ne[0]), row1(ne[0]);
    read(row0.data(), 4 * ne[0]);
    read(row1.data(), 4 * ne[0]);
    in.seekg(static_cast<std::streamoff>(16 * n_rows), std::ios::cur);  // row sums and sums of squares
    rows[name] = std::move(row0);
  }
  return rows;
}

}  // namespace

TEST_CASE("SIMD dequantization of real tensors is bit-exact with the reference and with llama.cpp") {
  IsaGuard guard;
  std::set<GgmlType> seen;
  for (const char *model : kModels) {
    auto path = test_data(std::string("models/") + model + ".gguf");
    auto ref_path = test_data(std::string("reference/dequant/") + model + ".dequant.bin");
    if (!path || !ref_path) return;
    const auto file = gguf::File::open(*path);
    const auto llama_rows = llama_cpp_row0(*ref_path);
    for (const auto &t : file.tensors()) {
      const auto data = file.data(t);
      const size_t rb = row_bytes(t.type, t.ne[0]);
      const auto &llama_row0 = llama_rows.at(t.name);
      seen.insert(t.type);
      for (int64_t r : {int64_t{0}, t.n_rows() / 2, t.n_rows() - 1}) {
        const std::byte *row = data.data() + static_cast<size_t>(r) * rb;
        std::vector<float> ref(static_cast<size_t>(t.ne[0]));
        quant::dequantize_row_ref(t.type, row, ref.data(), t.ne[0]);
        for (cpu::Isa isa : cpu::supported_isas()) {
          cpu::set_isa_override(isa);
          std::vector<float> got(ref.size(), -1.f);
          cpu::dequantize_row(t.type, row, got.data(), t.ne[0]);
          INFO(model << " " << t.name << " row " << r << " on " << cpu::isa_name(isa));
          REQUIRE(std::memcmp(got.data(), ref.data(), 4 * got.size()) == 0);
          if (r == 0) REQUIRE(std::memcmp(got.data(), llama_row0.data(), 4 * got.size()) == 0);
        }
      }
    }
  }
  // The mixes cover every K format plus Q4_0, Q8_0, MXFP4, F16 and F32.
  for (GgmlType type : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                        GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::MXFP4, GgmlType::F16, GgmlType::F32})
    CHECK_MESSAGE(seen.count(type) == 1, "no real tensor of type " << type_name(type));
}

TEST_CASE("vec_dot on real rows: every ISA bit-identical, within the f64 and activation-rounding bounds") {
  std::mt19937 rng(11);
  for (const char *model : kModels) {
    auto path = test_data(std::string("models/") + model + ".gguf");
    if (!path) return;
    const auto file = gguf::File::open(*path);
    for (const auto &t : file.tensors()) {
      if (t.n_dims < 2) continue;  // norms: vectors, not matrices
      const auto data = file.data(t);
      const size_t rb = row_bytes(t.type, t.ne[0]);
      const auto x = gaussian_row(rng, t.ne[0]);
      for (int64_t r : {int64_t{0}, t.n_rows() - 1}) {
        INFO(model << " " << t.name << " row " << r);
        check_vec_dot(t.type, data.data() + static_cast<size_t>(r) * rb, x);
      }
    }
  }
}

TEST_CASE("matmul of a real Q4_K_M projection matches the per-row vec_dot on 1 and 2 threads") {
  auto path = test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  const auto file = gguf::File::open(*path);
  const auto &t = file.tensor("blk.0.ffn_down.weight");
  const auto data = file.data(t);
  std::mt19937 rng(12);
  const int64_t n_tokens = 7;
  std::vector<float> x;
  for (int64_t i = 0; i < n_tokens; ++i) {
    const auto row = gaussian_row(rng, t.ne[0]);
    x.insert(x.end(), row.begin(), row.end());
  }
  std::vector<std::byte> act(row_bytes(cpu::vec_dot_type(t.type), t.ne[0]));
  for (int threads : {1, 2}) {
    cpu::ThreadPool pool(threads);
    std::vector<float> y(static_cast<size_t>(n_tokens * t.ne[1]));
    cpu::matmul(pool, t.type, data.data(), t.ne[1], t.ne[0], x.data(), n_tokens, y.data());
    for (int64_t tok = 0; tok < n_tokens; ++tok) {
      cpu::quantize_activations(t.type, x.data() + tok * t.ne[0], act.data(), t.ne[0]);
      for (int64_t r = 0; r < t.ne[1]; ++r) {
        const float expected = cpu::vec_dot(t.type, t.ne[0], data.data() + r * row_bytes(t.type, t.ne[0]), act.data());
        REQUIRE(y[static_cast<size_t>(tok * t.ne[1] + r)] == expected);
      }
    }
  }
}
