#include "chat/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace vramfit::chat {

namespace {

// Containers whose last owner went away while another container was being freed; the outermost
// ~Value frees them one at a time.
thread_local std::vector<Value> *t_pending = nullptr;
thread_local MutationLog *t_mutation_log = nullptr;

void too_deep() { template_error("values nested more than {} deep (a list inside itself?)", kMaxValueDepth); }

}  // namespace

bool Value::sole_owner_of_container() const noexcept {
  if (is_array()) return std::get<std::shared_ptr<Array>>(v_).use_count() == 1;
  if (is_object()) return std::get<std::shared_ptr<Object>>(v_).use_count() == 1;
  return false;
}

Value::~Value() {
  if (!sole_owner_of_container()) return;
  if (t_pending) {  // a container being freed holds this one: later, by the loop below
    t_pending->push_back(std::move(*this));
    return;
  }
  std::vector<Value> pending;
  t_pending = &pending;
  pending.push_back(std::move(*this));
  while (!pending.empty()) {
    auto storage = std::move(pending.back().v_);
    pending.pop_back();
    storage = Undefined{};  // frees the container; its sole-owned children land in `pending`
  }
  t_pending = nullptr;
}

MutationLog::MutationLog() : previous_(t_mutation_log) { t_mutation_log = this; }

MutationLog::~MutationLog() {
  t_mutation_log = previous_;
  for (const auto &weak : arrays_) {
    if (auto a = weak.lock()) {
      Array dead;
      dead.swap(*a);
    }
  }
  for (const auto &weak : objects_)
    if (auto o = weak.lock()) o->clear();
}

void MutationLog::note(const Value &container) {
  MutationLog *log = t_mutation_log;
  if (!log) return;
  if (container.is_array()) {
    const auto &p = std::get<std::shared_ptr<Array>>(container.v_);
    if (log->seen_.insert(p.get()).second) log->arrays_.push_back(p);
  } else if (container.is_object()) {
    const auto &p = std::get<std::shared_ptr<Object>>(container.v_);
    if (log->seen_.insert(p.get()).second) log->objects_.push_back(p);
  }
}

void Object::clear() {
  std::vector<std::pair<std::string, Value>> dead;
  dead.swap(items);
  index_.clear();
}

Value Value::object() { return Value(std::make_shared<Object>()); }

Value Value::name_space() {
  auto o = std::make_shared<Object>();
  o->is_namespace = true;
  return Value(std::move(o));
}

double Value::as_double() const { return is_int() ? static_cast<double>(as_int()) : std::get<double>(v_); }

bool Value::truthy() const {
  switch (kind()) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return as_bool();
    case Kind::integer: return as_int() != 0;
    case Kind::number: return as_double() != 0.0;
    case Kind::string: return !as_string().empty();
    case Kind::array: return !as_array().empty();
    case Kind::object: return !as_object().items.empty();
    case Kind::callable: return true;
  }
  return false;
}

const char *Value::type_name() const {
  switch (kind()) {
    case Kind::undefined: return "undefined";
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::number: return "float";
    case Kind::string: return "str";
    case Kind::array: return "list";
    case Kind::object: return as_object().is_namespace ? "Namespace" : "dict";
    case Kind::callable: return "function";
  }
  return "?";
}

const Value *Object::find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items[it->second].second;
}

void Object::set(const std::string &key, Value value) {
  auto [it, inserted] = index_.emplace(key, items.size());
  if (inserted) {
    items.emplace_back(key, std::move(value));
  } else {
    items[it->second].second = std::move(value);
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form, then laid out as Python's repr does: plain
  // notation for exponents -4..15, scientific ("1e-05", "1.5e+16") outside.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const std::string_view s(buf, size_t(end - buf));
  const size_t e = s.find('e');
  int exponent = 0;  // to_chars writes "e+16" / "e-05", and no terminating NUL
  std::from_chars(buf + e + 2, end, exponent);
  if (buf[e + 1] == '-') exponent = -exponent;
  const bool negative = buf[0] == '-';
  std::string digits;
  for (char c : s.substr(negative ? 1 : 0, e - (negative ? 1 : 0)))
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  } else if (exponent < 0) {
    out += "0.";
    out.append(size_t(-exponent - 1), '0');
    out += digits;
  } else {
    const size_t int_digits = size_t(exponent) + 1;
    out.append(digits, 0, std::min(int_digits, digits.size()));
    if (digits.size() <= int_digits) {
      out.append(int_digits - digits.size(), '0');
      out += ".0";
    } else {
      out += '.';
      out.append(digits, int_digits);
    }
  }
  return out;
}

namespace {

std::string string_repr(const std::string &s) {
  // Python prefers single quotes, and switches to double quotes when the text has a ' but no ".
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) {
      out += '\\';
      out += q;
    }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

}  // namespace

std::string repr(const Value &v, int depth) {
  if (depth > kMaxValueDepth) too_deep();
  switch (v.kind()) {
    case Value::Kind::string: return string_repr(v.as_string());
    case Value::Kind::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.as_array().size(); ++i) {
        if (i) out += ", ";
        out += repr(v.as_array()[i], depth + 1);
      }
      out += ']';
      return out;
    }
    case Value::Kind::object: {
      const Object &o = v.as_object();
      std::string out = o.is_namespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < o.items.size(); ++i) {
        if (i) out += ", ";
        out += string_repr(o.items[i].first);
        out += ": ";
        out += repr(o.items[i].second, depth + 1);
      }
      out += o.is_namespace ? "}>" : "}";
      return out;
    }
    default: return to_str(v);
  }
}

std::string to_str(const Value &v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return "";
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return v.as_bool() ? "True" : "False";
    case Value::Kind::integer: return std::to_string(v.as_int());
    case Value::Kind::number: return float_repr(v.as_double());
    case Value::Kind::string: return v.as_string();
    case Value::Kind::callable: return fmt::format("<function {}>", v.as_callable().name);
    default: return repr(v);
  }
}

bool equal(const Value &a, const Value &b, int depth) {
  if (depth > kMaxValueDepth) too_deep();
  // bool is an int in Python (True == 1), and ints compare with floats by value.
  const bool a_num = a.is_number() || a.is_bool(), b_num = b.is_number() || b.is_bool();
  if (a_num && b_num) {
    auto num = [](const Value &v) { return v.is_bool() ? (v.as_bool() ? 1.0 : 0.0) : v.as_double(); };
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return num(a) == num(b);
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return a.as_string() == b.as_string();
    case Value::Kind::array: {
      const Array &x = a.as_array(), &y = b.as_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equal(x[i], y[i], depth + 1)) return false;
      return true;
    }
    case Value::Kind::object: {
      const Object &x = a.as_object(), &y = b.as_object();
      if (&x == &y) return true;
      if (x.is_namespace || y.is_namespace || x.items.size() != y.items.size()) return false;
      for (const auto &[key, value] : x.items) {
        const Value *other = y.find(key);
        if (!other || !equal(value, *other, depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::callable: return &a.as_callable() == &b.as_callable();
    default: return false;
  }
}


size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<size_t> utf8_offsets(std::string_view s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) out.push_back(i);
  out.push_back(s.size());
  return out;
}

}  // namespace vramfit::chat
