// Renders a parsed template (ast.hpp) with jinja2's semantics: Undefined prints as "", `for`
// and macros open their own scope (hence namespace()), `set` writes the innermost one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "chat/ast.hpp"

namespace vramfit::chat {

struct RenderOptions {
  // What strftime_now() formats: this instant in UTC, or (unset) the local time now.
  std::optional<std::chrono::sys_seconds> now;
  // Statements, expressions and loop iterations a render may evaluate before it is stopped
  // with Error(invalid_argument), and how deeply they may nest (recursive macros): a hostile
  // template can then neither hang nor blow the stack.
  uint64_t max_steps = 10'000'000;
  int max_depth = 200;
};

// `context` is a dict of the template's variables (its lists and namespace objects that the
// template changes in place are emptied when render returns: see MutationLog). Throws Error naming the template line:
// format for a type error (`'int' + 'str'`, calling what is no function, reading an attribute of
// Undefined), invalid_argument for raise_exception() and the limits above.
std::string render(const Template &tmpl, const Value &context, const RenderOptions &options);

}  // namespace vramfit::chat
