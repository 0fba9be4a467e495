// chat.cpp — a streaming chat loop over the C++ API: each line you type is appended to the
// conversation and the model's answer is printed as it is generated. The context keeps the whole
// conversation; when it is full, it starts over.
//
//   chat MODEL.gguf [n_ctx]
#include <cstdlib>
#include <iostream>
#include <string>

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
    vramfit::Model model = vramfit::Model::load(argv[1]);
    vramfit::ContextParams context_params;
    context_params.n_ctx = argc > 2 ? std::atoi(argv[2]) : 2048;
    vramfit::Context context(model, context_params);
    vramfit::Sampler sampler;  // temperature 0.8, top-k 40, top-p 0.95, min-p 0.05

    vramfit::GenerateParams generate_params;
    generate_params.max_tokens = 256;
    generate_params.stop = {"\nUser:"};
    generate_params.on_piece = [](std::string_view piece) {
      std::cout << piece << std::flush;
      return true;
    };

    std::string line;
    std::cout << "> " << std::flush;
    while (std::getline(std::cin, line)) {
      const std::string turn = "\nUser: " + line + "\nAssistant:";
      vramfit::GenerateResult result = vramfit::generate(context, sampler, turn, generate_params);
      if (result.stop_reason == vramfit::StopReason::context_full) {
        std::cout << "\n[context full: starting a new conversation]";
        context.clear();
        sampler.reset();
      }
      std::cout << "\n> " << std::flush;
    }
    return 0;
  } catch (const vramfit::Error &e) {
    std::cerr << "chat: " << e.what() << "\n";
    return 1;
  }
}
