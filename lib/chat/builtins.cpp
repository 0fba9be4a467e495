#include "chat/builtins.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <map>

#include "chat/json.hpp"
#include "chat/text.hpp"

namespace vramfit::chat {

void check_string_size(size_t bytes) {
  if (bytes > kMaxStringBytes)
    throw TemplateError(ErrorCode::invalid_argument,
                        fmt::format("a string would grow past {} MiB (a template that never ends?)", kMaxStringBytes >> 20));
}

void check_item_count(size_t items) {
  if (items > kMaxItems)
    throw TemplateError(ErrorCode::invalid_argument, fmt::format("a list would grow past {} items", kMaxItems));
}

const Value *argument(const CallArgs &args, size_t position, std::string_view name) {
  if (position < args.positional.size()) return &args.positional[position];
  for (const auto &[key, value] : args.named)
    if (key == name) return &value;
  return nullptr;
}

const std::string &need_string(const Value &v, std::string_view what) {
  if (!v.is_string()) template_error("{} must be a string, not {}", what, v.type_name());
  return v.as_string();
}

int64_t need_int(const Value &v, std::string_view what) {
  if (v.is_bool()) return v.as_bool();
  if (!v.is_int()) template_error("{} must be an integer, not {}", what, v.type_name());
  return v.as_int();
}

Array iterate(const Value &v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::array: return v.as_array();
    case Value::Kind::string: {
      Array out;
      const auto offsets = utf8_offsets(v.as_string());
      for (size_t i = 0; i + 1 < offsets.size(); ++i)
        out.emplace_back(v.as_string().substr(offsets[i], offsets[i + 1] - offsets[i]));
      return out;
    }
    case Value::Kind::object: {
      Array out;
      for (const auto &item : v.as_object().items) out.emplace_back(item.first);
      return out;
    }
    default: template_error("'{}' object is not iterable", v.type_name());
  }
}

namespace {

bool parse_index(const std::string &text, size_t &out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// `x.a.b` for map(attribute=...), selectattr, sort(attribute=...); "0" indexes a list.
Value attribute_path(const Value &v, const std::string &path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = std::min(path.find('.', pos), path.size());
    const std::string part = path.substr(pos, dot - pos);
    if (cur.is_object()) {
      const Value *f = cur.as_object().find(part);
      cur = f ? *f : Value::undefined(part);
    } else if (size_t i = 0; cur.is_array() && parse_index(part, i)) {
      cur = i < cur.as_array().size() ? cur.as_array()[i] : Value::undefined(part);
    } else {
      return Value::undefined(part);
    }
    pos = dot + 1;
  }
  return cur;
}

}  // namespace

bool less(const Value &a, const Value &b, bool case_sensitive, int depth) {
  if (depth > kMaxValueDepth) template_error("values nested more than {} deep", kMaxValueDepth);
  const bool a_num = a.is_number() || a.is_bool(), b_num = b.is_number() || b.is_bool();
  auto num = [](const Value &v) { return v.is_bool() ? (v.as_bool() ? 1.0 : 0.0) : v.as_double(); };
  if (a_num && b_num) {
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int();
    return num(a) < num(b);
  }
  if (a.is_string() && b.is_string()) {
    if (case_sensitive) return a.as_string() < b.as_string();
    return ascii_map(a.as_string(), to_lower) < ascii_map(b.as_string(), to_lower);
  }
  if (a.is_array() && b.is_array()) {
    const Array &x = a.as_array(), &y = b.as_array();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (less(x[i], y[i], case_sensitive, depth + 1)) return true;
      if (less(y[i], x[i], case_sensitive, depth + 1)) return false;
    }
    return x.size() < y.size();
  }
  template_error("'<' not supported between '{}' and '{}'", a.type_name(), b.type_name());
}

namespace {

// ---- filters ----

Value f_trim(const Value &v, CallArgs &a) { return Value(strip(to_str(v), true, true, argument(a, 0, "chars"))); }

Value f_length(const Value &v, CallArgs &) {
  switch (v.kind()) {
    case Value::Kind::undefined: return Value(0);
    case Value::Kind::string: return Value(int64_t(utf8_length(v.as_string())));
    case Value::Kind::array: return Value(int64_t(v.as_array().size()));
    case Value::Kind::object: return Value(int64_t(v.as_object().items.size()));
    default: template_error("object of type '{}' has no len()", v.type_name());
  }
}

Value f_tojson(const Value &v, CallArgs &a) {
  std::optional<int> indent;
  if (const Value *i = argument(a, 0, "indent"); i && !i->is_none()) indent = int(std::clamp<int64_t>(need_int(*i, "indent"), 0, 64));
  try {
    return Value(dump_json(v, indent));
  } catch (const Error &e) {
    throw TemplateError(e.code(), e.what());
  }
}

Value f_join(const Value &v, CallArgs &a) {
  const Value *sep = argument(a, 0, "d");
  const Value *attr = argument(a, 1, "attribute");
  const std::string d = sep ? to_str(*sep) : "";
  std::string out;
  bool first = true;
  for (const Value &item : iterate(v)) {
    if (!first) out += d;
    first = false;
    out += to_str(attr ? attribute_path(item, to_str(*attr)) : item);
    check_string_size(out.size());
  }
  return Value(std::move(out));
}

Value f_upper(const Value &v, CallArgs &) { return Value(ascii_map(to_str(v), to_upper)); }
Value f_lower(const Value &v, CallArgs &) { return Value(ascii_map(to_str(v), to_lower)); }
Value f_capitalize(const Value &v, CallArgs &) { return Value(capitalize(to_str(v))); }
Value f_title(const Value &v, CallArgs &) { return Value(title(to_str(v))); }

Value f_replace(const Value &v, CallArgs &a) {
  const Value *from = argument(a, 0, "old"), *to = argument(a, 1, "new"), *count = argument(a, 2, "count");
  if (!from || !to) template_error("replace needs the old and the new text");
  return Value(replace(to_str(v), to_str(*from), to_str(*to), count && !count->is_none() ? need_int(*count, "count") : -1));
}

Value f_first(const Value &v, CallArgs &) {
  Array items = iterate(v);
  return items.empty() ? Value::undefined("first item") : items.front();
}

Value f_last(const Value &v, CallArgs &) {
  Array items = iterate(v);
  return items.empty() ? Value::undefined("last item") : items.back();
}

Value f_default(const Value &v, CallArgs &a) {
  const Value *fallback = argument(a, 0, "default_value");
  const Value *boolean = argument(a, 1, "boolean");
  const bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
  return use ? (fallback ? *fallback : Value("")) : v;
}

Value f_list(const Value &v, CallArgs &) { return Value(iterate(v)); }
Value f_string(const Value &v, CallArgs &) { return Value(to_str(v)); }

Value f_int(const Value &v, CallArgs &a) {
  const Value *fallback = argument(a, 0, "default");
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(int64_t(v.as_bool()));
  if (v.is_float() && std::isfinite(v.as_double()) && std::fabs(v.as_double()) < 9e18) return Value(int64_t(v.as_double()));
  if (v.is_string()) {
    const std::string s = strip(v.as_string(), true, true);
    char *end = nullptr;
    errno = 0;
    const long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value(int64_t(i));
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9e18) return Value(int64_t(d));
  }
  return fallback ? *fallback : Value(0);
}

Value f_float(const Value &v, CallArgs &a) {
  const Value *fallback = argument(a, 0, "default");
  if (v.is_number()) return Value(v.as_double());
  if (v.is_bool()) return Value(v.as_bool() ? 1.0 : 0.0);
  if (v.is_string()) {
    const std::string s = strip(v.as_string(), true, true);
    char *end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return fallback ? *fallback : Value(0.0);
}

Value f_abs(const Value &v, CallArgs &) {
  if (v.is_int()) {
    if (v.as_int() == INT64_MIN) template_error("integer overflow in abs");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  template_error("bad operand type for abs(): '{}'", v.type_name());
}

Value f_round(const Value &v, CallArgs &a) {
  if (!v.is_number()) template_error("round needs a number, not {}", v.type_name());
  const Value *p = argument(a, 0, "precision"), *m = argument(a, 1, "method");
  const int64_t precision = p ? std::clamp<int64_t>(need_int(*p, "precision"), 0, 15) : 0;
  const std::string method = m ? to_str(*m) : "common";
  const double scale = std::pow(10.0, double(precision));
  double x = v.as_double() * scale;
  x = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
  return Value(x / scale);
}

Value f_reverse(const Value &v, CallArgs &) {
  Array items = iterate(v);
  std::reverse(items.begin(), items.end());
  if (!v.is_string()) return Value(std::move(items));
  std::string out;
  for (const Value &c : items) out += c.as_string();
  return Value(std::move(out));
}

Value f_sort(const Value &v, CallArgs &a) {
  const Value *rev = argument(a, 0, "reverse"), *cs = argument(a, 1, "case_sensitive"), *attr = argument(a, 2, "attribute");
  Array items = iterate(v);
  const bool case_sensitive = cs && cs->truthy();
  auto key = [&](const Value &x) { return attr ? attribute_path(x, to_str(*attr)) : x; };
  std::stable_sort(items.begin(), items.end(),
                   [&](const Value &x, const Value &y) { return less(key(x), key(y), case_sensitive); });
  if (rev && rev->truthy()) std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}

Value f_unique(const Value &v, CallArgs &) {
  Array out;
  for (const Value &x : iterate(v))
    if (std::none_of(out.begin(), out.end(), [&](const Value &y) { return equal(x, y); })) out.push_back(x);
  return Value(std::move(out));
}

Value f_min_max(const Value &v, CallArgs &a, bool want_max) {
  Array items = iterate(v);
  if (items.empty()) return Value::undefined("min/max of an empty sequence");
  const Value *cs = argument(a, 0, "case_sensitive");
  const Value *best = &items[0];
  for (const Value &x : items)
    if (want_max ? less(*best, x, cs && cs->truthy()) : less(x, *best, cs && cs->truthy())) best = &x;
  return *best;
}
Value f_min(const Value &v, CallArgs &a) { return f_min_max(v, a, false); }
Value f_max(const Value &v, CallArgs &a) { return f_min_max(v, a, true); }

Value f_sum(const Value &v, CallArgs &a) {
  const Value *attr = argument(a, 0, "attribute"), *start = argument(a, 1, "start");
  int64_t i = start ? need_int(*start, "start") : 0;
  double d = 0;
  bool is_float = false;
  for (const Value &x0 : iterate(v)) {
    const Value x = attr ? attribute_path(x0, to_str(*attr)) : x0;
    if (x.is_float()) {
      is_float = true;
      d += x.as_double();
    } else {
      if (__builtin_add_overflow(i, need_int(x, "sum's items"), &i)) template_error("integer overflow in sum");
    }
  }
  return is_float ? Value(d + double(i)) : Value(i);
}

// map('filter', args...) or map(attribute='name', default=...).
Value f_map(const Value &v, CallArgs &a) {
  Array out;
  if (const Value *attr = argument(a, 99, "attribute")) {
    const Value *fallback = argument(a, 99, "default");
    for (const Value &x : iterate(v)) {
      Value y = attribute_path(x, to_str(*attr));
      out.push_back(y.is_undefined() && fallback ? *fallback : y);
    }
    return Value(std::move(out));
  }
  if (a.positional.empty()) template_error("map needs a filter name or attribute=");
  const std::string name = to_str(a.positional[0]);
  const FilterFn f = find_filter(name);
  if (!f) template_error("map: unknown filter '{}'", name);
  CallArgs rest{{a.positional.begin() + 1, a.positional.end()}, a.named, a.line};
  for (const Value &x : iterate(v)) out.push_back(f(x, rest));
  return Value(std::move(out));
}

// select / reject / selectattr / rejectattr: keep the items whose test (default: truthiness) is
// `keep`.
Value select_items(const Value &v, CallArgs &a, bool keep, bool by_attribute) {
  size_t next = 0;
  std::string attr;
  if (by_attribute) {
    if (a.positional.empty()) template_error("selectattr/rejectattr need an attribute name");
    attr = to_str(a.positional[next++]);
  }
  TestFn test = nullptr;
  std::string test_name;
  if (next < a.positional.size()) {
    test_name = to_str(a.positional[next++]);
    test = find_test(test_name);
    if (!test) template_error("unknown test '{}'", test_name);
  }
  CallArgs rest{{a.positional.begin() + std::ptrdiff_t(next), a.positional.end()}, {}, a.line};
  Array out;
  for (const Value &x : iterate(v)) {
    const Value subject = by_attribute ? attribute_path(x, attr) : x;
    const bool pass = test ? test(subject, rest) : subject.truthy();
    if (pass == keep) out.push_back(x);
  }
  return Value(std::move(out));
}
Value f_select(const Value &v, CallArgs &a) { return select_items(v, a, true, false); }
Value f_reject(const Value &v, CallArgs &a) { return select_items(v, a, false, false); }
Value f_selectattr(const Value &v, CallArgs &a) { return select_items(v, a, true, true); }
Value f_rejectattr(const Value &v, CallArgs &a) { return select_items(v, a, false, true); }

Value f_items(const Value &v, CallArgs &) {
  Array out;
  if (v.is_undefined()) return Value(std::move(out));
  if (!v.is_object()) template_error("items needs a mapping, not {}", v.type_name());
  for (const auto &[key, value] : v.as_object().items) out.push_back(Value(Array{Value(key), value}));
  return Value(std::move(out));
}

Value f_dictsort(const Value &v, CallArgs &a) {
  Value items = f_items(v, a);
  const Value *cs = argument(a, 0, "case_sensitive"), *by = argument(a, 1, "by"), *rev = argument(a, 2, "reverse");
  const size_t k = by && to_str(*by) == "value" ? 1 : 0;
  Array &list = items.as_array();
  std::stable_sort(list.begin(), list.end(), [&](const Value &x, const Value &y) {
    return less(x.as_array()[k], y.as_array()[k], cs && cs->truthy());
  });
  if (rev && rev->truthy()) std::reverse(list.begin(), list.end());
  return items;
}

Value f_safe(const Value &v, CallArgs &) { return v; }

Value f_escape(const Value &v, CallArgs &) {
  std::string out;
  for (char c : to_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}

// indent(width=4, first=False, blank=False): indents every line but the first (and blank ones).
Value f_indent(const Value &v, CallArgs &a) {
  const Value *w = argument(a, 0, "width"), *first = argument(a, 1, "first"), *blank = argument(a, 2, "blank");
  const std::string pad = w && w->is_string() ? w->as_string() : std::string(size_t(std::clamp<int64_t>(w ? need_int(*w, "width") : 4, 0, 256)), ' ');
  const std::string s = to_str(v);
  std::string out;
  size_t pos = 0;
  for (size_t n = 0; pos <= s.size(); ++n) {
    const size_t nl = std::min(s.find('\n', pos), s.size());
    const std::string line = s.substr(pos, nl - pos);
    if ((n > 0 || (first && first->truthy())) && (!line.empty() || (blank && blank->truthy()))) out += pad;
    out += line;
    if (nl < s.size()) out += '\n';
    check_string_size(out.size());
    pos = nl + 1;
  }
  return Value(std::move(out));
}

Value f_format(const Value &v, CallArgs &a) {
  Array args = a.positional;
  return Value(percent_format(to_str(v), args));
}

const std::map<std::string_view, FilterFn> &filters() {
  static const std::map<std::string_view, FilterFn> table = {
      {"abs", f_abs},         {"capitalize", f_capitalize}, {"count", f_length},   {"d", f_default},
      {"default", f_default}, {"dictsort", f_dictsort},     {"e", f_escape},       {"escape", f_escape},
      {"first", f_first},     {"float", f_float},           {"format", f_format},  {"indent", f_indent},  {"int", f_int},
      {"items", f_items},     {"join", f_join},             {"last", f_last},      {"length", f_length},
      {"list", f_list},       {"lower", f_lower},           {"map", f_map},        {"max", f_max},
      {"min", f_min},         {"reject", f_reject},         {"rejectattr", f_rejectattr},
      {"replace", f_replace}, {"reverse", f_reverse},       {"round", f_round},    {"safe", f_safe},
      {"select", f_select},   {"selectattr", f_selectattr}, {"sort", f_sort},      {"string", f_string},
      {"sum", f_sum},         {"title", f_title},           {"tojson", f_tojson},  {"trim", f_trim},
      {"unique", f_unique},   {"upper", f_upper},
  };
  return table;
}

// ---- tests ----

const Value &test_arg(const CallArgs &a) {
  if (a.positional.empty()) template_error("this test needs an argument");
  return a.positional[0];
}

bool t_defined(const Value &v, CallArgs &) { return !v.is_undefined(); }
bool t_undefined(const Value &v, CallArgs &) { return v.is_undefined(); }
bool t_none(const Value &v, CallArgs &) { return v.is_none(); }
bool t_boolean(const Value &v, CallArgs &) { return v.is_bool(); }
bool t_true(const Value &v, CallArgs &) { return v.is_bool() && v.as_bool(); }
bool t_false(const Value &v, CallArgs &) { return v.is_bool() && !v.as_bool(); }
bool t_integer(const Value &v, CallArgs &) { return v.is_int(); }
bool t_float(const Value &v, CallArgs &) { return v.is_float(); }
bool t_number(const Value &v, CallArgs &) { return v.is_number() || v.is_bool(); }
bool t_string(const Value &v, CallArgs &) { return v.is_string(); }
bool t_mapping(const Value &v, CallArgs &) { return v.is_object(); }
bool t_iterable(const Value &v, CallArgs &) { return v.is_array() || v.is_string() || v.is_object(); }
bool t_sequence(const Value &v, CallArgs &) { return v.is_array() || v.is_string() || v.is_object(); }
bool t_callable(const Value &v, CallArgs &) { return v.is_callable(); }
bool t_odd(const Value &v, CallArgs &) { return need_int(v, "odd's value") % 2 != 0; }
bool t_even(const Value &v, CallArgs &) { return need_int(v, "even's value") % 2 == 0; }
bool t_divisibleby(const Value &v, CallArgs &a) {
  const int64_t d = need_int(test_arg(a), "divisibleby's argument");
  if (d == 0) template_error("divisibleby 0");
  return need_int(v, "divisibleby's value") % d == 0;
}
bool t_eq(const Value &v, CallArgs &a) { return equal(v, test_arg(a)); }
bool t_ne(const Value &v, CallArgs &a) { return !equal(v, test_arg(a)); }
bool t_lt(const Value &v, CallArgs &a) { return less(v, test_arg(a), true); }
bool t_gt(const Value &v, CallArgs &a) { return less(test_arg(a), v, true); }
bool t_le(const Value &v, CallArgs &a) { return !less(test_arg(a), v, true); }
bool t_ge(const Value &v, CallArgs &a) { return !less(v, test_arg(a), true); }
bool t_in(const Value &v, CallArgs &a) {
  const Value &c = test_arg(a);
  if (c.is_string()) return v.is_string() && c.as_string().find(v.as_string()) != std::string::npos;
  if (c.is_object()) return v.is_string() && c.as_object().find(v.as_string());
  for (const Value &x : iterate(c))
    if (equal(v, x)) return true;
  return false;
}
bool t_lower(const Value &v, CallArgs &) { return v.is_string() && ascii_map(v.as_string(), to_lower) == v.as_string(); }
bool t_upper(const Value &v, CallArgs &) { return v.is_string() && ascii_map(v.as_string(), to_upper) == v.as_string(); }
bool t_sameas(const Value &v, CallArgs &a) {
  const Value &o = test_arg(a);
  if (v.is_array() && o.is_array()) return &v.as_array() == &o.as_array();
  if (v.is_object() && o.is_object()) return &v.as_object() == &o.as_object();
  return v.kind() == o.kind() && (v.is_none() || v.is_undefined() || equal(v, o));
}

const std::map<std::string_view, TestFn> &tests() {
  static const std::map<std::string_view, TestFn> table = {
      {"!=", t_ne},         {"<", t_lt},           {"<=", t_le},         {"==", t_eq},
      {">", t_gt},          {">=", t_ge},          {"boolean", t_boolean}, {"callable", t_callable},
      {"defined", t_defined}, {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq},
      {"even", t_even},     {"false", t_false},    {"float", t_float},   {"ge", t_ge},
      {"greaterthan", t_gt}, {"gt", t_gt},         {"in", t_in},         {"integer", t_integer},
      {"iterable", t_iterable}, {"le", t_le},      {"lessthan", t_lt},   {"lower", t_lower},
      {"lt", t_lt},         {"mapping", t_mapping}, {"ne", t_ne},        {"none", t_none},
      {"number", t_number}, {"odd", t_odd},        {"sameas", t_sameas}, {"sequence", t_sequence},
      {"string", t_string}, {"true", t_true},      {"undefined", t_undefined}, {"upper", t_upper},
  };
  return table;
}

// ---- methods ----

Value list_method(const Value &self, std::string_view name, CallArgs &a) {
  Array &list = self.as_array();
  if (name == "append") {
    if (a.positional.size() != 1) template_error("list.append takes one argument");
    check_item_count(list.size() + 1);
    MutationLog::note(self);
    list.push_back(a.positional[0]);
    return Value(nullptr);
  }
  if (name == "extend") {
    if (a.positional.size() != 1) template_error("list.extend takes one argument");
    Array more = iterate(a.positional[0]);
    check_item_count(list.size() + more.size());
    MutationLog::note(self);
    list.insert(list.end(), more.begin(), more.end());
    return Value(nullptr);
  }
  if (name == "pop") {
    if (list.empty()) template_error("pop from an empty list");
    int64_t i = a.positional.empty() ? -1 : need_int(a.positional[0], "pop's index");
    if (i < 0) i += int64_t(list.size());
    if (i < 0 || i >= int64_t(list.size())) template_error("pop index out of range");
    Value out = list[size_t(i)];
    list.erase(list.begin() + i);
    return out;
  }
  if (name == "index" || name == "count") {
    if (a.positional.empty()) template_error("list.{} needs a value", name);
    int64_t n = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!equal(list[i], a.positional[0])) continue;
      if (name == "index") return Value(int64_t(i));
      ++n;
    }
    if (name == "index") template_error("value is not in the list");
    return Value(n);
  }
  template_error("list has no method '{}'", name);
}

Value dict_method(const Value &self, std::string_view name, CallArgs &a) {
  const Object &o = self.as_object();
  if (name == "items") return f_items(self, a);
  if (name == "keys" || name == "values") {
    Array out;
    for (const auto &[key, value] : o.items) out.push_back(name == "keys" ? Value(key) : value);
    return Value(std::move(out));
  }
  if (name == "get") {
    if (a.positional.empty()) template_error("dict.get needs a key");
    const Value *fallback = argument(a, 1, "default");
    const Value *found = a.positional[0].is_string() ? o.find(a.positional[0].as_string()) : nullptr;
    return found ? *found : fallback ? *fallback : Value(nullptr);
  }
  template_error("dict has no method '{}'", name);
}


}  // namespace


FilterFn find_filter(std::string_view name) {
  auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}

Value bind_method(const Value &obj, std::string_view name) {
  static const std::string_view list_methods[] = {"append", "extend", "pop", "index", "count"};
  static const std::string_view dict_methods[] = {"items", "keys", "values", "get"};
  auto has = [&](const auto &names) { return std::find(std::begin(names), std::end(names), name) != std::end(names); };
  const bool ok = (obj.is_string() && is_string_method(name)) || (obj.is_array() && has(list_methods)) ||
                  (obj.is_object() && !obj.as_object().is_namespace && has(dict_methods));
  if (!ok) return Value::undefined(std::string(name));
  auto callable = std::make_shared<Callable>();
  callable->name = fmt::format("{}.{}", obj.type_name(), name);
  callable->fn = [obj, method = std::string(name)](Renderer &, CallArgs &a) {
    if (obj.is_string()) return string_method(obj.as_string(), method, a);
    if (obj.is_array()) return list_method(obj, method, a);
    return dict_method(obj, method, a);
  };
  return Value(std::shared_ptr<const Callable>(std::move(callable)));
}

}  // namespace vramfit::chat