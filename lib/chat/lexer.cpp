#include "chat/lexer.hpp"

#include <charconv>
#include <cstdlib>

#include "chat/value.hpp"
#include "common/error.hpp"

namespace vramfit::chat {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// jinja reads the source with every \r\n and \r as \n, and drops one final newline
// (keep_trailing_newline is off).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : s_(source) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) {
      const size_t start = find_tag(pos_);
      if (start == std::string_view::npos) {
        emit_text(std::string(s_.substr(pos_)));
        advance_to(s_.size());
        break;
      }
      const char kind = s_[start + 1];
      const char control = start + 2 < s_.size() ? s_[start + 2] : '\0';
      const bool strip_before = control == '-';
      const bool keep_before = control == '+' && kind != '{';
      std::string text(s_.substr(pos_, start - pos_));
      if (strip_before) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind != '{' && !keep_before) {
        lstrip_block(text, pos_);
      }
      emit_text(std::move(text));
      advance_to(start);
      const int tag_line = line_;
      advance_to(start + 2 + (strip_before || keep_before ? 1 : 0));
      if (kind == '#') {
        comment(tag_line);
      } else if (kind == '%' && raw_block(tag_line)) {
        continue;
      } else {
        tag(kind == '{', tag_line);
      }
    }
    out_.push_back(Token{Token::Type::end, "", 0, 0, line_});
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string_view::npos; i = s_.find('{', i + 1)) {
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  void advance_to(size_t to) {
    for (; pos_ < to; ++pos_)
      if (s_[pos_] == '\n') ++line_;
  }

  void emit_text(std::string text) {
    if (!text.empty()) out_.push_back(Token{Token::Type::text, std::move(text), 0, 0, line_});
  }

  // lstrip_blocks: whitespace between the start of a line and a block tag goes. The text starts
  // a line when it holds a newline, or when it follows one (the template start, a newline eaten
  // by trim_blocks).
  void lstrip_block(std::string &text, size_t text_start) const {
    const size_t newline = text.rfind('\n');
    size_t line_start = 0;
    if (newline != std::string::npos) {
      line_start = newline + 1;
    } else if (text_start != 0 && s_[text_start - 1] != '\n') {
      return;
    }
    for (size_t i = line_start; i < text.size(); ++i)
      if (!is_space(text[i])) return;
    text.resize(line_start);
  }

  // After a tag: `-` removes all following whitespace; trim_blocks removes one newline after a
  // block or comment tag.
  void after_tag(bool strip_after, bool trim_newline) {
    if (strip_after) {
      size_t p = pos_;
      while (p < s_.size() && is_space(s_[p])) ++p;
      advance_to(p);
    } else if (trim_newline && pos_ < s_.size() && s_[pos_] == '\n') {
      advance_to(pos_ + 1);
    }
  }

  void comment(int tag_line) {
    const size_t end = s_.find("#}", pos_);
    if (end == std::string_view::npos) detail::fail(ErrorCode::format, "chat template line {}: unclosed comment '{{#'", tag_line);
    const bool strip_after = end > pos_ && s_[end - 1] == '-';
    advance_to(end + 2);
    after_tag(strip_after, true);
  }

  // Matches `NAME -?%}` at p (spaces allowed around): the rest of a {% raw %} or {% endraw %}
  // tag. Returns the position after it, or npos.
  size_t simple_tag_end(size_t p, std::string_view name, bool &strip_after) const {
    while (p < s_.size() && is_space(s_[p])) ++p;
    if (s_.substr(p, name.size()) != name) return std::string_view::npos;
    p += name.size();
    while (p < s_.size() && is_space(s_[p])) ++p;
    strip_after = p < s_.size() && s_[p] == '-';
    if (strip_after) ++p;
    return s_.substr(p, 2) == "%}" ? p + 2 : std::string_view::npos;
  }

  // {% raw %}...{% endraw %}: the text between is output as it is, tags and all.
  bool raw_block(int tag_line) {
    bool strip_after = false;
    const size_t body = simple_tag_end(pos_, "raw", strip_after);
    if (body == std::string_view::npos) return false;
    for (size_t open = s_.find("{%", body); open != std::string_view::npos; open = s_.find("{%", open + 2)) {
      const bool strip_before = open + 2 < s_.size() && s_[open + 2] == '-';
      bool strip_end = false;
      const size_t end = simple_tag_end(open + 2 + (strip_before ? 1 : 0), "endraw", strip_end);
      if (end == std::string_view::npos) continue;
      size_t from = body;
      if (strip_after) {
        while (from < open && is_space(s_[from])) ++from;
      } else if (from < open && s_[from] == '\n') {
        ++from;  // trim_blocks after {% raw %}
      }
      std::string text(s_.substr(from, open - from));
      if (strip_before) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else {
        lstrip_block(text, from);
      }
      emit_text(std::move(text));
      advance_to(end);
      after_tag(strip_end, true);
      return true;
    }
    detail::fail(ErrorCode::format, "chat template line {}: 'raw' block is never closed (no '{{% endraw %}}')", tag_line);
  }

  void tag(bool variable, int tag_line) {
    out_.push_back(Token{variable ? Token::Type::var_begin : Token::Type::block_begin, "", 0, 0, tag_line});
    std::string open;  // brackets open: `}}` inside a dict literal does not end the tag
    while (true) {
      while (pos_ < s_.size() && is_space(s_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= s_.size())
        detail::fail(ErrorCode::format, "chat template line {}: unclosed tag '{}' (no '{}')", tag_line,
                     variable ? "{{" : "{%", variable ? "}}" : "%}");
      const std::string_view rest = s_.substr(pos_);
      const std::string_view end = variable ? "}}" : "%}";
      if (!variable || open.empty()) {
        const bool strip_after = rest.starts_with("-") && rest.substr(1).starts_with(end);
        if (strip_after || rest.starts_with(end)) {
          out_.push_back(Token{variable ? Token::Type::var_end : Token::Type::block_end, "", 0, 0, line_});
          advance_to(pos_ + end.size() + (strip_after ? 1 : 0));
          after_tag(strip_after, !variable);
          return;
        }
      }
      expression_token(open);
    }
  }

  void expression_token(std::string &open) {
    const char c = s_[pos_];
    if (is_name_start(c)) {
      size_t end = pos_;
      while (end < s_.size() && is_name_char(s_[end])) ++end;
      out_.push_back(Token{Token::Type::name, std::string(s_.substr(pos_, end - pos_)), 0, 0, line_});
      advance_to(end);
    } else if (is_digit(c)) {
      number();
    } else if (c == '\'' || c == '"') {
      string_literal(c);
    } else {
      op(open);
    }
  }

  void number() {
    size_t end = pos_;
    std::string digits;
    bool is_float = false;
    auto take_digits = [&] {
      while (end < s_.size() && (is_digit(s_[end]) || (s_[end] == '_' && end + 1 < s_.size() && is_digit(s_[end + 1])))) {
        if (s_[end] != '_') digits += s_[end];
        ++end;
      }
    };
    take_digits();
    if (end + 1 < s_.size() && s_[end] == '.' && is_digit(s_[end + 1])) {
      is_float = true;
      digits += s_[end++];
      take_digits();
    }
    if (end < s_.size() && (s_[end] == 'e' || s_[end] == 'E')) {
      size_t e = end + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      if (e < s_.size() && is_digit(s_[e])) {
        is_float = true;
        digits += std::string(s_.substr(end, e - end));
        end = e;
        take_digits();
      }
    }
    Token t{is_float ? Token::Type::number : Token::Type::integer, digits, 0, 0, line_};
    if (is_float) {
      t.number = std::strtod(digits.c_str(), nullptr);
    } else {
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t.integer);
      if (ec != std::errc()) detail::fail(ErrorCode::format, "chat template line {}: integer {} is too large", line_, digits);
    }
    out_.push_back(std::move(t));
    advance_to(end);
  }

  uint32_t hex(size_t &p, int n, int line) const {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i, ++p) {
      const char c = p < s_.size() ? s_[p] : '\0';
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else detail::fail(ErrorCode::format, "chat template line {}: bad escape in a string literal", line);
    }
    return v;
  }

  // A string literal with Python's escapes (\n, \t, \\, \', \", \xHH, \uHHHH ...); an unknown
  // escape keeps its backslash, as Python does.
  void string_literal(char quote) {
    const int start_line = line_;
    std::string out;
    size_t p = pos_ + 1;
    while (true) {
      if (p >= s_.size()) detail::fail(ErrorCode::format, "chat template line {}: unterminated string literal", start_line);
      const char c = s_[p];
      if (c == quote) break;
      if (c != '\\' || p + 1 >= s_.size()) {
        out += c;
        ++p;
        continue;
      }
      const char e = s_[p + 1];
      p += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': append_utf8(out, hex(p, 2, line_)); break;
        case 'u': append_utf8(out, hex(p, 4, line_)); break;
        case 'U': append_utf8(out, hex(p, 8, line_)); break;
        default: out += '\\'; out += e;
      }
    }
    out_.push_back(Token{Token::Type::string, std::move(out), 0, 0, start_line});
    advance_to(p + 1);
  }

  void op(std::string &open) {
    static constexpr std::string_view kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
                                                "<",  ">",  "=",  "(",  ")",  "[",  "]", "{", "}", ",", ".", ":", "|"};
    for (std::string_view o : kOps) {
      if (s_.substr(pos_).starts_with(o)) {
        if (o == "(" || o == "[" || o == "{") open += o[0];
        if (o == ")" || o == "]" || o == "}") {
          const char expected = open.empty() ? '\0' : open.back() == '(' ? ')' : open.back() == '[' ? ']' : '}';
          if (o[0] != expected) {
            if (expected) detail::fail(ErrorCode::format, "chat template line {}: unexpected '{}', expected '{}'", line_, o, expected);
            detail::fail(ErrorCode::format, "chat template line {}: unexpected '{}'", line_, o);
          }
          open.pop_back();
        }
        out_.push_back(Token{Token::Type::op, std::string(o), 0, 0, line_});
        advance_to(pos_ + o.size());
        return;
      }
    }
    detail::fail(ErrorCode::format, "chat template line {}: unexpected character '{}' in a tag", line_, s_[pos_]);
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex_template(std::string_view source) {
  const std::string normalized = normalize_newlines(source);
  return Lexer(normalized).run();
}

}  // namespace vramfit::chat
