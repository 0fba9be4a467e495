#include <string>

#include "common/error.hpp"
#include "common/log.hpp"
#include "model/model_impl.hpp"

namespace vramfit {
namespace {

void check_device(const std::string &device) {
  if (device == "auto" || device == "cpu") return;
  if (device.starts_with("cuda") || device.starts_with("sim"))
    detail::fail(ErrorCode::unsupported, "ModelParams.device '{}': only the CPU engine is available in this build",
                 device);
  detail::fail(ErrorCode::invalid_argument,
               "ModelParams.device '{}' is not one of auto, cpu, cuda[:N], sim[:CAPACITY]", device);
}

}  // namespace

Model Model::load(const std::filesystem::path &path, const ModelParams &params) {
  check_device(params.device);
  gguf::File file = gguf::File::open(path);
  ModelInfo info = model::read_llama_info(file);
  if (info.name.empty()) info.name = path.filename().string();
  model::LlamaWeights weights = model::read_llama_weights(file, info);
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
  if (tok.n_vocab() != info.n_vocab)
    detail::log_warn("{}: the tokenizer has {} tokens, the embedding table {}", file.name(), tok.n_vocab(),
                     info.n_vocab);
  detail::log_info("{}: llama, {} layers, n_embd {}, {} heads ({} KV), n_ff {}, vocab {}, {:.1f} MB of weights",
                   file.name(), info.n_layer, info.n_embd, info.n_head, info.n_head_kv, info.n_ff,
                   info.n_vocab, info.weight_bytes / 1e6);
  auto impl = std::make_shared<Impl>(Impl{path, params, std::move(file), std::move(tok), std::move(info),
                                          std::move(weights)});
  return Model(std::move(impl));
}

const ModelInfo &Model::info() const noexcept { return impl_->info; }
const ModelParams &Model::params() const noexcept { return impl_->params; }
const std::filesystem::path &Model::path() const noexcept { return impl_->path; }

std::vector<int32_t> Model::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  return impl_->tokenizer.encode(text, add_special, parse_special);
}
std::string Model::detokenize(std::span<const int32_t> tokens) const { return impl_->tokenizer.decode(tokens); }
std::string Model::token_to_piece(int32_t token) const { return impl_->tokenizer.token_to_piece(token); }

int32_t Model::n_vocab() const noexcept { return impl_->info.n_vocab; }
int32_t Model::n_ctx_train() const noexcept { return impl_->info.n_ctx_train; }
int32_t Model::bos() const noexcept { return impl_->tokenizer.bos(); }
int32_t Model::eos() const noexcept { return impl_->tokenizer.eos(); }
bool Model::is_eog(int32_t token) const noexcept { return impl_->tokenizer.is_eog(token); }

}  // namespace vramfit
