// jinja's filters (`x | trim`), tests (`x is string`) and the Python methods of values
// (`d.items()`, `xs.append(x)`; str's are in text.hpp) that chat templates use, plus the limits
// every operation that grows a value respects.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "chat/value.hpp"
#include "vramfit/error.hpp"

namespace vramfit::chat {

// Bounds that keep a hostile template from exhausting memory: any string it builds (the output
// included) and any list it builds.
constexpr size_t kMaxStringBytes = size_t{64} << 20;
constexpr size_t kMaxItems = size_t{1} << 20;
void check_string_size(size_t bytes);
void check_item_count(size_t items);

using FilterFn = Value (*)(const Value &operand, CallArgs &args);
using TestFn = bool (*)(const Value &operand, CallArgs &args);

// Null when jinja has no such filter / test, or vramfit does not implement it.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// `obj.name` when it names a method of obj's type (str, list, dict): a callable bound to obj.
// Undefined otherwise.
Value bind_method(const Value &obj, std::string_view name);

// The argument at `position`, else the keyword argument `name`, else null.
const Value *argument(const CallArgs &args, size_t position, std::string_view name);

// The items `for x in v` visits: list items, a string's characters, a dict's keys; none for
// undefined. Throws TemplateError for values that are not iterable.
Array iterate(const Value &v);

// Python's < (numbers with numbers, strings with strings, lists item by item); strings compare
// case-insensitively (ASCII) unless case_sensitive, as jinja's sort filter does.
bool less(const Value &a, const Value &b, bool case_sensitive, int depth = 0);

// An argument that must be a string / an integer (bool counts as int, as in Python); throws
// TemplateError naming `what` otherwise.
const std::string &need_string(const Value &v, std::string_view what);
int64_t need_int(const Value &v, std::string_view what);

}  // namespace vramfit::chat
