// Python's str semantics the templates rely on: its whitespace, strip/split/replace, printf-style
// formatting, and the str methods (`s.startswith(...)`, `s.split(...)` ...).
#include "chat/text.hpp"

#include <algorithm>
#include <cstdio>

#include "chat/builtins.hpp"

namespace vramfit::chat {
namespace {

// ---- UTF-8 and Python's notion of whitespace ----

uint32_t decode(std::string_view s, size_t i, size_t &len) {
  const auto c = static_cast<unsigned char>(s[i]);
  const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (n == 1 || i + size_t(n) > s.size()) {
    len = 1;
    return c;
  }
  uint32_t cp = c & (0x7F >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3F);
  len = size_t(n);
  return cp;
}

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0, len = 0; i < s.size(); i += len) out.push_back(decode(s, i, len));
  return out;
}

bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char &c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}
int to_upper(int c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }
int to_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

std::string capitalize(const std::string &s) {
  std::string out = ascii_map(s, to_lower);
  if (!out.empty()) out[0] = static_cast<char>(to_upper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string title(const std::string &s) {
  std::string out = s;
  bool word = false;
  for (char &c : out) {
    const auto u = static_cast<unsigned char>(c);
    const bool letter = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
    if (letter) c = static_cast<char>(word ? to_lower(u) : to_upper(u));
    word = letter || (u >= '0' && u <= '9') || u >= 0x80;
  }
  return out;
}

std::string replace(const std::string &s, const std::string &from, const std::string &to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` around every code point
    const auto offsets = utf8_offsets(s);
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count < 0 || int64_t(i) < count) out += to;
      out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
      check_string_size(out.size());
    }
    if (count < 0 || int64_t(offsets.size() - 1) < count) out += to;
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    check_string_size(out.size());
    pos = hit + from.size();
  }
  out.append(s, pos);
  check_string_size(out.size());
  return out;
}

namespace {

// Python's str.split / rsplit: no separator splits on whitespace runs and drops empty parts.
Array split(const std::string &s, const Value *sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep || sep->is_none()) {
    const auto cps = code_points(s);
    std::vector<std::pair<size_t, size_t>> words;  // byte ranges
    size_t byte = 0, start = 0;
    bool in_word = false;
    for (uint32_t cp : cps) {
      size_t len = 0;
      decode(s, byte, len);
      if (is_py_space(cp)) {
        if (in_word) words.emplace_back(start, byte);
        in_word = false;
      } else if (!in_word) {
        in_word = true;
        start = byte;
      }
      byte += len;
    }
    if (in_word) words.emplace_back(start, s.size());
    const size_t limit = maxsplit < 0 ? words.size() : std::min(words.size(), size_t(maxsplit) + 1);
    if (limit == words.size()) {
      for (auto [a, b] : words) parts.push_back(s.substr(a, b - a));
    } else if (!from_right) {
      for (size_t i = 0; i + 1 < limit; ++i) parts.push_back(s.substr(words[i].first, words[i].second - words[i].first));
      parts.push_back(strip(s.substr(words[limit - 1].first), false, true));
    } else {
      const size_t first = words.size() - limit + 1;
      parts.push_back(strip(s.substr(0, words[first - 1].second), true, false));
      for (size_t i = first; i < words.size(); ++i) parts.push_back(s.substr(words[i].first, words[i].second - words[i].first));
    }
  } else {
    const std::string &d = need_string(*sep, "split's separator");
    if (d.empty()) template_error("split: empty separator");
    if (!from_right) {
      size_t pos = 0;
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
        const size_t hit = s.find(d, pos);
        if (hit == std::string::npos) break;
        parts.push_back(s.substr(pos, hit - pos));
        pos = hit + d.size();
      }
      parts.push_back(s.substr(pos));
    } else {
      size_t end = s.size();
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
        if (end < d.size()) break;
        const size_t hit = s.rfind(d, end - d.size());
        if (hit == std::string::npos) break;
        parts.push_back(s.substr(hit + d.size(), end - hit - d.size()));
        end = hit;
      }
      parts.push_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
  }
  check_item_count(parts.size());
  Array out;
  for (auto &p : parts) out.emplace_back(std::move(p));
  return out;
}

bool starts_or_ends(const std::string &s, const Value &what, bool ends) {
  auto one = [&](const Value &p) {
    const std::string &x = need_string(p, ends ? "endswith's argument" : "startswith's argument");
    return ends ? s.ends_with(x) : s.starts_with(x);
  };
  if (what.is_array()) return std::any_of(what.as_array().begin(), what.as_array().end(), one);
  return one(what);
}

}  // namespace

Value string_method(const std::string &s, std::string_view name, CallArgs &a) {
  auto arg0 = [&](std::string_view what) -> const Value & {
    if (a.positional.empty()) template_error("str.{} needs {}", name, what);
    return a.positional[0];
  };
  if (name == "startswith" || name == "endswith") return Value(starts_or_ends(s, arg0("a prefix"), name == "endswith"));
  if (name == "strip") return Value(strip(s, true, true, argument(a, 0, "chars")));
  if (name == "lstrip") return Value(strip(s, true, false, argument(a, 0, "chars")));
  if (name == "rstrip") return Value(strip(s, false, true, argument(a, 0, "chars")));
  if (name == "split" || name == "rsplit") {
    const Value *max = argument(a, 1, "maxsplit");
    return Value(split(s, argument(a, 0, "sep"), max ? need_int(*max, "maxsplit") : -1, name == "rsplit"));
  }
  if (name == "replace") {
    const Value *count = argument(a, 2, "count");
    if (a.positional.size() < 2) template_error("str.replace needs the old and the new text");
    return Value(replace(s, need_string(a.positional[0], "replace's old text"), need_string(a.positional[1], "replace's new text"),
                         count ? need_int(*count, "count") : -1));
  }
  if (name == "upper") return Value(ascii_map(s, to_upper));
  if (name == "lower") return Value(ascii_map(s, to_lower));
  if (name == "title") return Value(title(s));
  if (name == "capitalize") return Value(capitalize(s));
  if (name == "find" || name == "count") {
    const std::string &sub = need_string(arg0("a substring"), "the substring");
    if (name == "find") {
      const size_t hit = s.find(sub);
      return Value(hit == std::string::npos ? int64_t{-1} : int64_t(utf8_length(std::string_view(s).substr(0, hit))));
    }
    if (sub.empty()) return Value(int64_t(utf8_length(s) + 1));
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
    return Value(n);
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value &x : iterate(arg0("an iterable"))) {
      if (!first) out += s;
      first = false;
      out += need_string(x, "join's items");
      check_string_size(out.size());
    }
    return Value(std::move(out));
  }
  auto all_cp = [&](auto pred) {
    const auto cps = code_points(s);
    return Value(!cps.empty() && std::all_of(cps.begin(), cps.end(), pred));
  };
  if (name == "isspace") return all_cp(is_py_space);
  if (name == "isdigit") return all_cp([](uint32_t c) { return c >= '0' && c <= '9'; });
  if (name == "isalpha") return all_cp([](uint32_t c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; });
  if (name == "isalnum") return all_cp([](uint32_t c) { return ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9'); });
  template_error("str has no method '{}'", name);
}

bool is_string_method(std::string_view n) {
  static const std::string_view names[] = {"startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit",
                                           "replace", "upper", "lower", "title", "capitalize", "find", "count",
                                           "join", "isspace", "isdigit", "isalpha", "isalnum"};
  return std::find(std::begin(names), std::end(names), n) != std::end(names);
}

std::string percent_format(const std::string &format, const Array &args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    // %[flags][width][.precision]conversion
    size_t j = i + 1;
    while (j < format.size() && std::string_view("-+ 0#").find(format[j]) != std::string_view::npos) ++j;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    if (j < format.size() && format[j] == '.') {
      ++j;
      while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    }
    if (j >= format.size()) template_error("incomplete format '{}'", format.substr(i));
    const char conversion = format[j];
    const std::string spec = format.substr(i, j - i);  // "%-5" or "%.2"
    if (spec.size() > 8) template_error("format '{}' is too wide", format.substr(i, j + 1 - i));
    i = j;
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) template_error("not enough arguments for format string");
    const Value &arg = args[next++];
    char buf[512] = "";
    switch (conversion) {
      case 's':
      case 'r': {
        const std::string text = conversion == 's' ? to_str(arg) : repr(arg);
        std::snprintf(buf, sizeof buf, (spec + "s").c_str(), "");
        const size_t pad = std::string_view(buf).size();
        out += spec.find('-') != std::string::npos ? text + std::string(pad > text.size() ? pad - text.size() : 0, ' ')
                                                   : std::string(pad > text.size() ? pad - text.size() : 0, ' ') + text;
        break;
      }
      case 'd':
      case 'i':
      case 'x':
        if (!arg.is_number() && !arg.is_bool()) template_error("%{} format: a number is required, not {}", conversion, arg.type_name());
        std::snprintf(buf, sizeof buf, (spec + "ll" + (conversion == 'x' ? 'x' : 'd')).c_str(),
                      static_cast<long long>(arg.is_bool() ? arg.as_bool() : arg.is_int() ? arg.as_int() : int64_t(arg.as_double())));
        out += buf;
        break;
      case 'f':
      case 'e':
      case 'g':
        if (!arg.is_number() && !arg.is_bool()) template_error("%{} format: a number is required, not {}", conversion, arg.type_name());
        std::snprintf(buf, sizeof buf, (spec + conversion).c_str(), arg.is_bool() ? double(arg.as_bool()) : arg.as_double());
        out += buf;
        break;
      default: template_error("unsupported format character '{}'", conversion);
    }
    check_string_size(out.size());
  }
  if (next < args.size()) template_error("not all arguments converted during string formatting");
  return out;
}

std::string strip(std::string_view s, bool left, bool right, const Value *chars) {
  std::vector<uint32_t> set;
  const bool whitespace = !chars || chars->is_none() || chars->is_undefined();
  if (!whitespace) set = code_points(need_string(*chars, "strip's chars"));
  auto strippable = [&](uint32_t cp) {
    return whitespace ? is_py_space(cp) : std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t begin = 0, end = s.size(), len = 0;
  while (left && begin < end && strippable(decode(s, begin, len))) begin += len;
  while (right && end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
    if (!strippable(decode(s, start, len)) || start + len != end) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

}  // namespace vramfit::chat
