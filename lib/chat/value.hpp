// The values a chat template computes with: Python's None, bool, int, float, str, list and dict
// (an insertion-ordered dict, as Python's), plus jinja's Undefined and callables (macros,
// built-in functions). Lists and dicts are shared by reference, as in Python, so that
// `namespace()` objects can be changed through any copy.
//
// The same type carries parsed JSON (messages, extra variables) and feeds `tojson`.
#pragma once

#include "common/utf8.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "vramfit/error.hpp"

namespace vramfit::chat {

// A failure while rendering. Code that does not know where it is in the template throws it; the
// renderer adds the template line and turns it into a vramfit::Error with `code`.
struct TemplateError : std::runtime_error {
  TemplateError(ErrorCode error_code, const std::string &message) : std::runtime_error(message), code(error_code) {}
  ErrorCode code;
};

template <class... Args>
[[noreturn]] void template_error(fmt::format_string<Args...> f, Args &&...args) {
  throw TemplateError(ErrorCode::format, fmt::format(f, std::forward<Args>(args)...));
}

// Recursive operations on values (repr, ==, <, tojson) refuse deeper nesting than this.
constexpr int kMaxValueDepth = 256;

class Value;
struct Object;
struct Callable;
using Array = std::vector<Value>;

// jinja's Undefined: what a missing variable, key or attribute evaluates to. It remembers what
// was missing, for error messages ("'foo' is undefined").
struct Undefined {
  std::string what;
};

class Value {
 public:
  enum class Kind { undefined, none, boolean, integer, number, string, array, object, callable };

  Value() = default;  // undefined
  Value(const Value &) = default;
  Value(Value &&) noexcept = default;
  Value &operator=(const Value &) = default;
  Value &operator=(Value &&) noexcept = default;
  // Frees nested lists and dicts one at a time, not recursively: a template can nest them
  // deeper than the stack would allow to recurse.
  ~Value();
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char *s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_shared<Array>(std::move(a))) {}
  Value(std::shared_ptr<Array> a) : v_(std::move(a)) {}
  Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}
  Value(std::shared_ptr<const Callable> f) : v_(std::move(f)) {}
  static Value undefined(std::string what) {
    Value v;
    v.v_ = Undefined{std::move(what)};
    return v;
  }
  static Value object();     // a new empty dict
  static Value name_space(); // a new empty namespace() object

  Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const noexcept { return kind() == Kind::undefined; }
  bool is_none() const noexcept { return kind() == Kind::none; }
  bool is_bool() const noexcept { return kind() == Kind::boolean; }
  bool is_int() const noexcept { return kind() == Kind::integer; }
  bool is_float() const noexcept { return kind() == Kind::number; }
  bool is_number() const noexcept { return is_int() || is_float(); }
  bool is_string() const noexcept { return kind() == Kind::string; }
  bool is_array() const noexcept { return kind() == Kind::array; }
  bool is_object() const noexcept { return kind() == Kind::object; }
  bool is_callable() const noexcept { return kind() == Kind::callable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const;  // int or float
  const std::string &as_string() const { return std::get<std::string>(v_); }
  Array &as_array() const { return *std::get<std::shared_ptr<Array>>(v_); }
  Object &as_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  const Callable &as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  const std::string &undefined_what() const { return std::get<Undefined>(v_).what; }
  // True when this holds the only reference to a list or dict.
  bool sole_owner_of_container() const noexcept;

  // Python's truth value: None, False, 0, "", [], {} and Undefined are false.
  bool truthy() const;
  // The type's name as jinja's error messages write it ("str", "dict", "undefined").
  const char *type_name() const;

 private:
  friend class MutationLog;
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string, std::shared_ptr<Array>,
               std::shared_ptr<Object>, std::shared_ptr<const Callable>>
      v_;
};

// An insertion-ordered dict with string keys (JSON objects, namespace(), loop).
struct Object {
  bool is_namespace = false;
  std::vector<std::pair<std::string, Value>> items;

  const Value *find(std::string_view key) const;
  void set(const std::string &key, Value value);
  void clear();

 private:
  std::map<std::string, size_t, std::less<>> index_;
};

// Lists and namespace objects changed in place (list.append, `set ns.x = ...`) while a
// MutationLog lives on this thread are emptied when it ends. A reference cycle (a list appended to
// itself, a namespace holding itself) needs such a change, so emptying them frees every cycle a
// render made: nothing leaks.
class MutationLog {
 public:
  MutationLog();
  ~MutationLog();
  MutationLog(const MutationLog &) = delete;
  MutationLog &operator=(const MutationLog &) = delete;
  // Records `container` (a list or dict) in this thread's log; no-op when there is none.
  static void note(const Value &container);

 private:
  std::vector<std::weak_ptr<Array>> arrays_;
  std::vector<std::weak_ptr<Object>> objects_;
  std::set<const void *> seen_;
  MutationLog *previous_;
};

class Renderer;  // render.cpp

// Arguments of a call: positional, then keyword (`f(1, x=2)`).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
  int line = 0;
};

struct Callable {
  std::string name;
  std::function<Value(Renderer &, CallArgs &)> fn;
};

// Python's str(): strings as they are, None/True/False, ints, floats as repr (1.0, 1e-05),
// lists and dicts as their repr. Undefined prints as "".
std::string to_str(const Value &v);
// Python's repr(): strings quoted ('a', "it's").
std::string repr(const Value &v, int depth = 0);
// Python's repr of a float: shortest round-trip digits, "1.0", "1e-05", "1e+16", "inf", "nan".
std::string float_repr(double d);
// Python's ==: 1 == 1.0 == True, lists and dicts element-wise; undefined equals undefined.
bool equal(const Value &a, const Value &b, int depth = 0);

// UTF-8 helpers: Python measures and slices strings in code points.
using detail::append_utf8;
size_t utf8_length(std::string_view s);
// Byte offsets of each code point start, plus s.size() at the end.
std::vector<size_t> utf8_offsets(std::string_view s);

}  // namespace vramfit::chat
