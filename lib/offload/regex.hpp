// <regex>, without GCC 12's false -Wmaybe-uninitialized inside libstdc++'s regex automaton
// (seen at -O2 with the sanitizers, which -Werror would turn into a build failure).
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
