// The C++ API through the installed headers and libvramfit.so: greedy next token of a prompt.
#include <iostream>

#include <vramfit/context.hpp>
#include <vramfit/model.hpp>
#include <vramfit/sampler.hpp>

int main(int argc, char **argv) {
  if (argc < 2) return 0;
  try {
    vramfit::Model model = vramfit::Model::load(argv[1]);
    vramfit::ContextParams params;
    params.n_ctx = 64;
    params.n_threads = 1;
    vramfit::Context context(model, params);
    vramfit::SamplerParams greedy;
    greedy.temperature = 0;
    vramfit::Sampler sampler(greedy);
    const auto tokens = model.tokenize("Once upon a time");
    const int32_t next = sampler.sample(context.decode(tokens));
    std::cout << "C++: next token after " << tokens.size() << " prompt tokens: " << next << "\n";
    return 0;
  } catch (const vramfit::Error &e) {  // typeinfo of vramfit::Error crosses the shared library
    std::cerr << "consumer_cpp: " << e.what() << "\n";
    return 1;
  }
}
