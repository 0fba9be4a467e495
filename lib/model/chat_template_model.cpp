// ChatTemplate::from_model lives with the model, so that the chat component does not depend on
// the whole engine: it reads the template from the model's mapped GGUF file.
#include "model/model_impl.hpp"
#include "vramfit/chat.hpp"

namespace vramfit {

ChatTemplate ChatTemplate::from_model(const Model &model) { return from_gguf(model.impl().file); }

}  // namespace vramfit
