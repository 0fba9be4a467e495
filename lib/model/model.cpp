#include <string>

#include "common/error.hpp"
#include "common/log.hpp"
#include "model/architecture.hpp"
#include "model/model_impl.hpp"

namespace vramfit {
Model Model::load(const std::filesystem::path &path, const ModelParams &params) {
  model::parse_device(params.device);  // a bad name fails before the file is read
  gguf::File file = gguf::File::open(path);
  ModelInfo info;
  model::ModelWeights weights = model::read_model(file, info);
  if (info.name.empty()) info.name = path.filename().string();
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
  if (tok.n_vocab() != info.n_vocab)
    detail::log_warn("{}: the tokenizer has {} tokens, the embedding table {}", file.name(), tok.n_vocab(),
                     info.n_vocab);
  detail::log_info("{}: {}, {} layers, n_embd {}, {} heads ({} KV), n_ff {}, {} experts ({} used), vocab {}, "
                   "{:.1f} MB of weights ({:.1f} MB read per token)",
                   file.name(), info.architecture, info.n_layer, info.n_embd, info.n_head, info.n_head_kv,
                   info.n_expert > 0 ? info.n_ff_exp : info.n_ff, info.n_expert, info.n_expert_used, info.n_vocab,
                   info.weight_bytes / 1e6, info.active_weight_bytes / 1e6);
  model::report_progress(params, file, 0.0f);
  std::optional<Plan> host_only_plan;
  auto executor = model::Executor::create(params, file, info, weights, host_only_plan);
  model::report_progress(params, file, 1.0f);
  ModelParams kept = params;
  kept.progress = nullptr;  // its captures need not outlive load()
  auto impl = std::make_shared<Impl>(Impl{path, std::move(kept), std::move(file), std::move(tok), std::move(info),
                                          std::move(weights), std::move(host_only_plan), std::move(executor)});
  return Model(std::move(impl));
}

const ModelInfo &Model::info() const noexcept { return impl_->info; }
const ModelParams &Model::params() const noexcept { return impl_->params; }
const std::filesystem::path &Model::path() const noexcept { return impl_->path; }
const Plan *Model::plan() const noexcept {
  if (impl_->executor) return &impl_->executor->plan();
  return impl_->host_only_plan ? &*impl_->host_only_plan : nullptr;
}

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
