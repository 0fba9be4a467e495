// Python's str semantics for templates: whitespace as Python defines it (ASCII and Unicode spaces),
// strip / split / replace, printf-style formatting and the str methods.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "chat/value.hpp"

namespace vramfit::chat {

// Python's str.strip() family: whitespace, or any code point of `chars` when given.
std::string strip(std::string_view s, bool left, bool right, const Value *chars = nullptr);

// Python's printf-style formatting (`'%s: %d' % (a, b)`, the `format` filter): %s %r %d %i %x
// %f %e %g %% with optional flags, width and precision. Throws TemplateError for anything else.
std::string percent_format(const std::string &format, const Array &args);

// Case mapping of ASCII letters (other bytes as they are); capitalize / title as Python's.
std::string ascii_map(std::string s, int (*f)(int));
int to_upper(int c);
int to_lower(int c);
std::string capitalize(const std::string &s);
std::string title(const std::string &s);

// Python's str.replace: count < 0 replaces every occurrence.
std::string replace(const std::string &s, const std::string &from, const std::string &to, int64_t count);

// `s.name(args)` for the str methods templates use (startswith, split, strip, replace, join ...).
bool is_string_method(std::string_view name);
Value string_method(const std::string &s, std::string_view name, CallArgs &args);

}  // namespace vramfit::chat
