// dump_logits MODEL N_CTX N_THREADS KV_TYPE OUT TOKEN...: the logits of every token, decoded as one
// batch on the CPU through the C++ API, written to OUT as raw float32 rows [n_tokens][n_vocab].
// The Python binding's test compares its own logits (C ABI via ctypes) with these bit for bit.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/context.hpp"
#include "vramfit/model.hpp"

int main(int argc, char **argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s MODEL N_CTX N_THREADS f16|f32|q8_0 OUT TOKEN...\n", argv[0]);
    return 2;
  }
  try {
    vramfit::ModelParams model_params;
    model_params.device = "cpu";
    const vramfit::Model model = vramfit::Model::load(argv[1], model_params);
    const std::string_view kv = argv[4];
    vramfit::ContextParams params;
    params.n_ctx = std::atoi(argv[2]);
    params.n_batch = params.n_ctx;
    params.n_threads = std::atoi(argv[3]);
    params.kv_type = kv == "f32" ? vramfit::GgmlType::F32 : kv == "q8_0" ? vramfit::GgmlType::Q8_0 : vramfit::GgmlType::F16;
    vramfit::Context context(model, params);
    std::vector<int32_t> tokens;
    for (int i = 6; i < argc; ++i) tokens.push_back(std::atoi(argv[i]));
    context.decode(tokens, /*all_logits=*/true);
    std::FILE *out = std::fopen(argv[5], "wb");
    if (!out) {
      std::fprintf(stderr, "dump_logits: cannot write %s\n", argv[5]);
      return 1;
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto row = context.logits(static_cast<int32_t>(i));
      std::fwrite(row.data(), sizeof(float), row.size(), out);
    }
    return std::fclose(out) == 0 ? 0 : 1;
  } catch (const vramfit::Error &e) {
    std::fprintf(stderr, "dump_logits: %s\n", e.what());
    return 1;
  }
}
