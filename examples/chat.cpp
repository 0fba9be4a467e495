// chat.cpp — a multi-turn chat over the C++ API, to copy into a program: the model's own chat
// template renders the whole conversation each turn, and the context decodes only the tokens its
// KV cache does not already hold. (`vramfit chat` is the full command: flags, Ctrl-C, a full
// context, stats.)
//
//   chat MODEL.gguf [n_ctx]      then one message per line; EOF ends
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "vramfit/chat.hpp"
#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

int main(int argc, char **argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " MODEL.gguf [n_ctx]\n";
    return 2;
  }
  try {
    const vramfit::Model model = vramfit::Model::load(argv[1]);
    vramfit::ContextParams context_params;
    context_params.n_ctx = argc > 2 ? std::atoi(argv[2]) : 2048;
    vramfit::Context context(model, context_params);
    vramfit::Sampler sampler;  // temperature 0.8, top-k 40, top-p 0.95, min-p 0.05
    // tokenizer.chat_template of the file; ChatML when it has none.
    const vramfit::ChatTemplate chat_template = vramfit::ChatTemplate::from_model(model);

    vramfit::GenerateParams generate_params;
    generate_params.max_tokens = 256;  // generation also stops at the model's end-of-turn token
    // ChatML's end of turn is text, not a token, in a vocabulary made without it.
    if (chat_template.is_default()) generate_params.stop = {"<|im_end|>"};
    generate_params.on_piece = [](std::string_view piece) {
      std::cout << piece << std::flush;
      return true;
    };

    std::vector<vramfit::ChatMessage> messages;
    // The template writes the special tokens as text: tokenize with parse_special, and without a
    // second BOS when the template wrote one.
    auto prompt_tokens = [&] {
      const std::string prompt = chat_template.apply(messages, /*add_generation_prompt=*/true);
      const bool has_bos = !chat_template.bos_token().empty() && prompt.starts_with(chat_template.bos_token());
      return model.tokenize(prompt, !has_bos, /*parse_special=*/true);
    };
    std::string line;
    std::cout << "> " << std::flush;
    while (std::getline(std::cin, line)) {
      messages.push_back({"user", line});
      std::vector<int32_t> tokens = prompt_tokens();
      if (tokens.size() + generate_params.max_tokens > static_cast<size_t>(context.n_ctx())) {
        std::cout << "[the conversation no longer fits the context: starting a new one]\n";
        messages.erase(messages.begin(), messages.end() - 1);
        tokens = prompt_tokens();
      }
      // Keeps the cache of the conversation so far; leaves the logits of the prompt's last token.
      context.decode_reusing_prefix(tokens);
      const vramfit::GenerateResult answer =
          vramfit::generate(context, sampler, std::span<const int32_t>{}, generate_params);
      messages.push_back({"assistant", answer.text});
      std::cout << "\n> " << std::flush;
    }
    return 0;
  } catch (const vramfit::Error &e) {
    std::cerr << "chat: " << e.what() << "\n";
    return 1;
  }
}
