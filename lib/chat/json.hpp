// JSON <-> chat::Value: the messages and extra variables callers pass in, and the `tojson` filter.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "chat/value.hpp"

namespace vramfit::chat {

// Parses RFC 8259 JSON (nesting at most 256 deep). Integers without fraction or exponent that
// fit int64 become ints, other numbers floats. Throws Error(invalid_argument) naming `what`,
// the line and column and the problem.
Value parse_json(std::string_view text, std::string_view what = "JSON");

// Python's json.dumps(v, ensure_ascii=False, indent=indent) as transformers' `tojson` filter
// calls it: ", " and ": " separators ("," before newlines when indented), keys in their order,
// non-ASCII text as it is. Throws Error(format) for values JSON has no form for (undefined,
// functions, namespace objects).
std::string dump_json(const Value &v, std::optional<int> indent = std::nullopt);

}  // namespace vramfit::chat
