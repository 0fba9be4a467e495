#include "chat/json.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/error.hpp"

namespace vramfit::chat {
namespace {

constexpr int kMaxDepth = 256;

class JsonParser {
 public:
  JsonParser(std::string_view text, std::string_view what) : s_(text), what_(what) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) error("unexpected text after the value");
    return v;
  }

 private:
  [[noreturn]] void error(std::string_view problem) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    detail::fail(ErrorCode::invalid_argument, "{}: line {} column {}: {}", what_, line, column, problem);
  }

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  bool consume(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) error("nested more than 256 deep");
    skip_space();
    if (pos_ >= s_.size()) error("unexpected end of input");
    const char c = s_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Value(parse_string());
    if (consume("true")) return Value(true);
    if (consume("false")) return Value(false);
    if (consume("null")) return Value(nullptr);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    error(fmt::format("unexpected character '{}'", c));
  }

  Value parse_object(int depth) {
    ++pos_;  // {
    Value out = Value::object();
    skip_space();
    if (consume("}")) return out;
    while (true) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a string key");
      std::string key = parse_string();
      skip_space();
      if (!consume(":")) error("expected ':'");
      out.as_object().set(key, parse_value(depth + 1));
      skip_space();
      if (consume("}")) return out;
      if (!consume(",")) error("expected ',' or '}'");
    }
  }

  Value parse_array(int depth) {
    ++pos_;  // [
    Array out;
    skip_space();
    if (consume("]")) return Value(std::move(out));
    while (true) {
      out.push_back(parse_value(depth + 1));
      skip_space();
      if (consume("]")) return Value(std::move(out));
      if (!consume(",")) error("expected ',' or ']'");
    }
  }

  Value parse_number() {
    const size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == from) error("malformed number");
    };
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else {
      digits();
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      digits();
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      digits();
    }
    const std::string text(s_.substr(start, pos_ - start));
    if (integral) {
      int64_t i = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
      if (ec == std::errc() && end == text.data() + text.size()) return Value(i);
    }
    return Value(std::strtod(text.c_str(), nullptr));
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) error("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else error("bad \\u escape");
    }
    return v;
  }

  std::string parse_string() {
    ++pos_;  // "
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) error("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in a string (escape it)");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) error("unterminated string");
      switch (s_[pos_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          // A surrogate pair encodes one code point; a lone surrogate becomes U+FFFD.
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
            const size_t save = pos_;
            pos_ += 2;
            const unsigned low = hex4();
            if (low >= 0xDC00 && low < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = save;
            }
          }
          if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
          append_utf8(out, cp);
          break;
        }
        default: --pos_; error("bad escape in a string");
      }
    }
  }

  std::string_view s_;
  std::string_view what_;
  size_t pos_ = 0;
};

void dump_string(const std::string &s, std::string &out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void dump(const Value &v, std::optional<int> indent, int level, std::string &out) {
  if (level > kMaxDepth) detail::fail(ErrorCode::format, "tojson: value nested more than {} deep", kMaxDepth);
  auto newline = [&](int lvl) {
    if (!indent) return;
    out += '\n';
    out.append(size_t(*indent) * size_t(lvl), ' ');
  };
  const char *comma = indent ? "," : ", ";
  switch (v.kind()) {
    case Value::Kind::none: out += "null"; return;
    case Value::Kind::boolean: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::integer: out += std::to_string(v.as_int()); return;
    case Value::Kind::number: {
      const double d = v.as_double();
      // Python writes the non-finite floats as these (invalid JSON) words.
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += float_repr(d);
      return;
    }
    case Value::Kind::string: dump_string(v.as_string(), out); return;
    case Value::Kind::array: {
      const Array &a = v.as_array();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += comma;
        newline(level + 1);
        dump(a[i], indent, level + 1, out);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::object: {
      const Object &o = v.as_object();
      if (o.is_namespace) detail::fail(ErrorCode::format, "tojson: a namespace object has no JSON form");
      if (o.items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < o.items.size(); ++i) {
        if (i) out += comma;
        newline(level + 1);
        dump_string(o.items[i].first, out);
        out += ": ";
        dump(o.items[i].second, indent, level + 1, out);
      }
      newline(level);
      out += '}';
      return;
    }
    case Value::Kind::undefined:
      detail::fail(ErrorCode::format, "tojson: '{}' is undefined", v.undefined_what());
    case Value::Kind::callable:
      detail::fail(ErrorCode::format, "tojson: a function has no JSON form");
  }
}

}  // namespace

Value parse_json(std::string_view text, std::string_view what) { return JsonParser(text, what).parse_document(); }

std::string dump_json(const Value &v, std::optional<int> indent) {
  std::string out;
  dump(v, indent, 0, out);
  return out;
}

}  // namespace vramfit::chat
