// Recursive descent over the lexer's tokens, with jinja2's operator precedence (lowest first):
// `x if c else y`, or, and, not, comparisons and `in`, + -, ~, * / // %, **, unary - +, then
// primaries with their postfixes (.attr, [index], [a:b], (call)), filters and tests.
#include <set>

#include "chat/ast.hpp"
#include "chat/lexer.hpp"
#include "common/error.hpp"

namespace vramfit::chat {
namespace {

// Deeper nesting (of expressions and blocks together) is refused, so that a hostile template
// cannot exhaust the stack while being parsed or rendered.
constexpr int kMaxNesting = 100;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::shared_ptr<const Template> run() {
    auto tmpl = std::make_shared<Template>();
    std::string stop;
    tmpl->body = body({}, stop, 0);
    return tmpl;
  }

 private:
  // ---- tokens ----
  const Token &peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  const Token &next() {
    const Token &t = peek();
    if (i_ < t_.size() - 1) ++i_;
    return t;
  }
  bool is_op(std::string_view op, size_t ahead = 0) const {
    return peek(ahead).type == Token::Type::op && peek(ahead).text == op;
  }
  bool is_name(std::string_view name, size_t ahead = 0) const {
    return peek(ahead).type == Token::Type::name && peek(ahead).text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  static std::string describe(const Token &t) {
    switch (t.type) {
      case Token::Type::text: return "text";
      case Token::Type::var_begin: return "'{{'";
      case Token::Type::var_end: return "'}}'";
      case Token::Type::block_begin: return "'{%'";
      case Token::Type::block_end: return "'%}'";
      case Token::Type::string: return "a string";
      case Token::Type::integer:
      case Token::Type::number: return "a number";
      case Token::Type::end: return "the end of the template";
      default: return fmt::format("'{}'", t.text);
    }
  }
  template <class... Args>
  [[noreturn]] void error(int line, fmt::format_string<Args...> f, Args &&...args) const {
    detail::fail(ErrorCode::format, "chat template line {}: {}", line, fmt::format(f, std::forward<Args>(args)...));
  }
  void expect_op(std::string_view op, std::string_view where) {
    if (!skip_op(op)) error(peek().line, "expected '{}' {}, found {}", op, where, describe(peek()));
  }
  void expect_block_end(std::string_view tag) {
    if (peek().type != Token::Type::block_end)
      error(peek().line, "expected '%}}' to end '{}', found {}", tag, describe(peek()));
    next();
  }
  std::string expect_name(std::string_view what) {
    if (peek().type != Token::Type::name) error(peek().line, "expected {}, found {}", what, describe(peek()));
    return next().text;
  }

  struct Nest {
    Nest(Parser &p, int line) : parser(p) {
      if (++parser.depth_ > kMaxNesting) parser.error(line, "nested more than {} deep", kMaxNesting);
    }
    ~Nest() { --parser.depth_; }
    Parser &parser;
  };

  // ---- statements ----

  // Statements up to one of the block tags in `stops` ({% elif %}, {% endfor %}...), whose name is
  // consumed and returned in `stop`; the rest of that tag is the caller's. `opened` names the
  // block being read for the error at the end of the template.
  Body body(const std::set<std::string> &stops, std::string &stop, int open_line, std::string_view opened = {}) {
    Body out;
    while (true) {
      const Token &t = peek();
      if (t.type == Token::Type::end) {
        if (stops.empty()) return out;
        error(open_line, "'{}' block is never closed (the template ends without '{{% {} %}}')", opened, *stops.rbegin());
      }
      if (t.type == Token::Type::text) {
        auto s = make_stmt(Stmt::Kind::text, t.line);
        s->text = next().text;
        out.push_back(std::move(s));
      } else if (t.type == Token::Type::var_begin) {
        next();
        auto s = make_stmt(Stmt::Kind::output, t.line);
        s->expr = expression();
        if (peek().type != Token::Type::var_end) error(peek().line, "expected '}}}}', found {}", describe(peek()));
        next();
        out.push_back(std::move(s));
      } else if (t.type == Token::Type::block_begin) {
        const int line = next().line;
        const std::string tag = expect_name("a statement name after '{%'");
        if (stops.count(tag)) {
          stop = tag;
          return out;
        }
        statement(tag, line, out);
      } else {
        error(t.line, "unexpected {}", describe(t));
      }
    }
  }

  static StmtPtr make_stmt(Stmt::Kind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  void statement(const std::string &tag, int line, Body &out) {
    Nest nest(*this, line);
    if (tag == "if") return out.push_back(if_statement(line));
    if (tag == "for") return out.push_back(for_statement(line));
    if (tag == "set") return out.push_back(set_statement(line));
    if (tag == "macro") return out.push_back(macro_statement(line));
    if (tag == "do") {
      auto s = make_stmt(Stmt::Kind::do_, line);
      s->expr = expression();
      expect_block_end("do");
      return out.push_back(std::move(s));
    }
    if (tag == "break" || tag == "continue") {
      if (loops_ == 0) error(line, "'{}' outside a for loop", tag);
      expect_block_end(tag);
      return out.push_back(make_stmt(tag == "break" ? Stmt::Kind::break_ : Stmt::Kind::continue_, line));
    }
    if (tag == "generation") {
      // transformers' marker of assistant text for training masks: renders its body as is.
      expect_block_end(tag);
      std::string stop;
      for (auto &s : body({"endgeneration"}, stop, line, tag)) out.push_back(std::move(s));
      expect_block_end("endgeneration");
      return;
    }
    static const std::set<std::string> kKnown = {"elif", "else", "endif", "endfor", "endset", "endmacro",
                                                 "endgeneration"};
    if (kKnown.count(tag)) error(line, "unexpected '{{% {} %}}' (no open block it could end)", tag);
    static const std::set<std::string> kJinja = {"call", "filter", "include", "import", "from", "extends",
                                                 "block", "with", "autoescape", "trans"};
    if (kJinja.count(tag))
      detail::fail(ErrorCode::unsupported, "chat template line {}: the '{{% {} %}}' statement is not supported", line, tag);
    error(line, "unknown statement '{{% {} %}}'", tag);
  }

  StmtPtr if_statement(int line) {
    auto s = make_stmt(Stmt::Kind::if_, line);
    s->conds.push_back(expression());
    expect_block_end("if");
    while (true) {
      std::string stop;
      s->bodies.push_back(body({"elif", "else", "endif"}, stop, line, "if"));
      if (stop == "elif") {
        s->conds.push_back(expression());
        expect_block_end("elif");
      } else if (stop == "else") {
        expect_block_end("else");
        s->bodies.push_back(body({"endif"}, stop, line, "if"));
        expect_block_end("endif");
        return s;
      } else {
        expect_block_end("endif");
        return s;
      }
    }
  }

  StmtPtr for_statement(int line) {
    auto s = make_stmt(Stmt::Kind::for_, line);
    do {
      s->targets.push_back(expect_name("a loop variable"));
    } while (skip_op(","));
    if (!skip_name("in")) error(peek().line, "expected 'in' in the for statement, found {}", describe(peek()));
    s->expr = or_expr();  // the iterable: a conditional here would swallow the loop filter `if`
    if (skip_name("if")) s->conds.push_back(expression());
    if (is_name("recursive"))
      detail::fail(ErrorCode::unsupported, "chat template line {}: recursive for loops are not supported", line);
    expect_block_end("for");
    ++loops_;
    std::string stop;
    s->bodies.push_back(body({"else", "endfor"}, stop, line, "for"));
    --loops_;
    if (stop == "else") {
      expect_block_end("else");
      s->bodies.push_back(body({"endfor"}, stop, line, "for"));
    }
    expect_block_end("endfor");
    return s;
  }

  StmtPtr set_statement(int line) {
    auto s = make_stmt(Stmt::Kind::set, line);
    s->targets.push_back(expect_name("a variable name after 'set'"));
    if (skip_op(".")) {
      s->attr = expect_name("an attribute name");
    } else {
      while (skip_op(",")) s->targets.push_back(expect_name("a variable name"));
    }
    if (peek().type == Token::Type::block_end && s->targets.size() == 1 && s->attr.empty()) {
      next();
      s->kind = Stmt::Kind::set_block;
      std::string stop;
      s->bodies.push_back(body({"endset"}, stop, line, "set"));
      expect_block_end("endset");
      return s;
    }
    expect_op("=", "in the set statement");
    s->expr = tuple_or_expression();
    expect_block_end("set");
    return s;
  }

  StmtPtr macro_statement(int line) {
    auto s = make_stmt(Stmt::Kind::macro, line);
    s->name = expect_name("a macro name");
    expect_op("(", "after the macro name");
    while (!skip_op(")")) {
      s->targets.push_back(expect_name("a parameter name"));
      s->defaults.push_back(skip_op("=") ? expression() : nullptr);
      if (!is_op(")")) expect_op(",", "between macro parameters");
    }
    expect_block_end("macro");
    const int loops = loops_;
    loops_ = 0;  // break/continue never reach through a macro into a caller's loop
    std::string stop;
    s->bodies.push_back(body({"endmacro"}, stop, line, "macro"));
    loops_ = loops;
    if (peek().type == Token::Type::name) next();  // {% endmacro name %}
    expect_block_end("endmacro");
    return s;
  }

  // ---- expressions ----

  static ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  static ExprPtr make(Expr::Kind kind, int line, ExprPtr a, ExprPtr b = nullptr) {
    auto e = make(kind, line);
    e->args.push_back(std::move(a));
    if (b) e->args.push_back(std::move(b));
    return e;
  }

  // `a, b` without brackets (set's right-hand side) is a tuple.
  ExprPtr tuple_or_expression() {
    const int line = peek().line;
    ExprPtr first = expression();
    if (!is_op(",")) return first;
    auto t = make(Expr::Kind::tuple, line);
    t->args.push_back(std::move(first));
    while (skip_op(",")) t->args.push_back(expression());
    return t;
  }

  ExprPtr expression() {
    Nest nest(*this, peek().line);
    ExprPtr e = or_expr();
    while (is_name("if")) {
      const int line = next().line;
      auto c = make(Expr::Kind::conditional, line, std::move(e), or_expr());
      if (skip_name("else")) c->args.push_back(expression());
      e = std::move(c);
    }
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (is_name("or")) {
      const int line = next().line;
      e = make(Expr::Kind::logical_or, line, std::move(e), and_expr());
    }
    return e;
  }

  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (is_name("and")) {
      const int line = next().line;
      e = make(Expr::Kind::logical_and, line, std::move(e), not_expr());
    }
    return e;
  }

  ExprPtr not_expr() {
    if (is_name("not")) {
      const int line = next().line;
      Nest nest(*this, line);
      return make(Expr::Kind::logical_not, line, not_expr());
    }
    return compare();
  }

  ExprPtr compare() {
    const int line = peek().line;
    ExprPtr first = math1();
    ExprPtr chain;
    while (true) {
      std::string op;
      if (peek().type == Token::Type::op &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
           peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      if (!chain) {
        chain = make(Expr::Kind::compare, line);
        chain->args.push_back(std::move(first));
      }
      chain->ops.push_back(op);
      chain->args.push_back(math1());
    }
    return chain ? std::move(chain) : std::move(first);
  }

  ExprPtr binary_level(ExprPtr (Parser::*operand)(), std::initializer_list<std::string_view> ops) {
    ExprPtr e = (this->*operand)();
    while (true) {
      std::string op;
      for (std::string_view o : ops)
        if (is_op(o)) op = o;
      if (op.empty()) return e;
      const int line = next().line;
      auto b = make(Expr::Kind::binary, line, std::move(e), (this->*operand)());
      b->name = op;
      e = std::move(b);
    }
  }
  ExprPtr math1() { return binary_level(&Parser::concat, {"+", "-"}); }
  ExprPtr concat() { return binary_level(&Parser::math2, {"~"}); }
  ExprPtr math2() { return binary_level(&Parser::power, {"*", "/", "//", "%"}); }
  ExprPtr power() { return binary_level(&Parser::unary_with_filters, {"**"}); }

  ExprPtr unary_with_filters() { return unary(true); }

  ExprPtr unary(bool with_filters) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token &t = next();
      Nest nest(*this, t.line);
      e = make(Expr::Kind::unary, t.line, unary(false));
      e->name = t.text;
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    return with_filters ? filters_and_tests(std::move(e)) : std::move(e);
  }

  ExprPtr primary() {
    const Token &t = peek();
    switch (t.type) {
      case Token::Type::name: {
        next();
        auto e = make(Expr::Kind::literal, t.line);
        if (t.text == "true" || t.text == "True") e->value = Value(true);
        else if (t.text == "false" || t.text == "False") e->value = Value(false);
        else if (t.text == "none" || t.text == "None") e->value = Value(nullptr);
        else {
          e->kind = Expr::Kind::name;
          e->name = t.text;
        }
        return e;
      }
      case Token::Type::string: {
        std::string s = next().text;
        while (peek().type == Token::Type::string) s += next().text;  // "a" "b" is "ab"
        auto e = make(Expr::Kind::literal, t.line);
        e->value = Value(std::move(s));
        return e;
      }
      case Token::Type::integer: {
        auto e = make(Expr::Kind::literal, t.line);
        e->value = Value(next().integer);
        return e;
      }
      case Token::Type::number: {
        auto e = make(Expr::Kind::literal, t.line);
        e->value = Value(next().number);
        return e;
      }
      case Token::Type::op:
        if (t.text == "(") return parenthesized();
        if (t.text == "[") return list_literal();
        if (t.text == "{") return dict_literal();
        break;
      default: break;
    }
    error(t.line, "expected an expression, found {}", describe(t));
  }

  ExprPtr parenthesized() {
    const int line = next().line;
    Nest nest(*this, line);
    if (skip_op(")")) return make(Expr::Kind::tuple, line);
    ExprPtr first = expression();
    if (skip_op(")")) return first;
    auto t = make(Expr::Kind::tuple, line);
    t->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (is_op(")")) break;
      t->args.push_back(expression());
    }
    expect_op(")", "to close '('");
    return t;
  }

  ExprPtr list_literal() {
    const int line = next().line;
    Nest nest(*this, line);
    auto e = make(Expr::Kind::list, line);
    while (!skip_op("]")) {
      e->args.push_back(expression());
      if (!is_op("]")) expect_op(",", "between list items");
    }
    return e;
  }

  ExprPtr dict_literal() {
    const int line = next().line;
    Nest nest(*this, line);
    auto e = make(Expr::Kind::dict, line);
    while (!skip_op("}")) {
      e->args.push_back(expression());
      expect_op(":", "after a dict key");
      e->args.push_back(expression());
      if (!is_op("}")) expect_op(",", "between dict items");
    }
    return e;
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        auto a = make(Expr::Kind::attr, line, std::move(e));
        if (peek().type == Token::Type::integer) {  // x.0 is x[0] in jinja
          auto idx = make(Expr::Kind::literal, line);
          idx->value = Value(next().integer);
          a->kind = Expr::Kind::index;
          a->args.push_back(std::move(idx));
        } else {
          a->name = expect_name("an attribute name after '.'");
        }
        e = std::move(a);
      } else if (is_op("[")) {
        e = subscript(std::move(e));
      } else if (is_op("(")) {
        e = call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr object) {
    const int line = next().line;
    Nest nest(*this, line);
    ExprPtr start = is_op(":") ? nullptr : expression();
    if (skip_op("]")) return make(Expr::Kind::index, line, std::move(object), std::move(start));
    auto s = make(Expr::Kind::slice, line);
    s->args.push_back(std::move(object));
    s->args.push_back(std::move(start));
    expect_op(":", "in a subscript");
    s->args.push_back(is_op(":") || is_op("]") ? nullptr : expression());
    if (skip_op(":")) s->args.push_back(is_op("]") ? nullptr : expression());
    else s->args.push_back(nullptr);
    expect_op("]", "to close '['");
    return s;
  }

  // (a, b, name=c): positional arguments first, then keyword arguments.
  void call_arguments(Expr &e) {
    expect_op("(", "to start the arguments");
    while (!skip_op(")")) {
      if (peek().type == Token::Type::name && is_op("=", 1)) {
        e.kwnames.push_back(next().text);
        next();
      } else if (!e.kwnames.empty()) {
        error(peek().line, "a positional argument follows keyword arguments");
      }
      e.args.push_back(expression());
      if (!is_op(")")) expect_op(",", "between arguments");
    }
  }

  ExprPtr call(ExprPtr callee) {
    Nest nest(*this, peek().line);
    auto c = make(Expr::Kind::call, peek().line, std::move(callee));
    call_arguments(*c);
    return c;
  }

  ExprPtr filters_and_tests(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        const int line = next().line;
        auto f = make(Expr::Kind::filter, line, std::move(e));
        f->name = expect_name("a filter name after '|'");
        f->filter_fn = find_filter(f->name);
        if (!f->filter_fn)
          detail::fail(ErrorCode::unsupported, "chat template line {}: unknown filter '{}'", line, f->name);
        if (is_op("(")) call_arguments(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        e = test(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr test(ExprPtr operand) {
    const int line = next().line;
    auto t = make(Expr::Kind::test, line, std::move(operand));
    t->negated = skip_name("not");
    if (peek().type != Token::Type::name) error(peek().line, "expected a test name after 'is', found {}", describe(peek()));
    t->name = next().text;
    t->test_fn = find_test(t->name);
    if (!t->test_fn) detail::fail(ErrorCode::unsupported, "chat template line {}: unknown test '{}'", line, t->name);
    // `x is divisibleby 3`: one argument without parentheses, as jinja2 allows.
    const Token &a = peek();
    if (is_op("(")) {
      call_arguments(*t);
    } else if ((a.type == Token::Type::name && a.text != "else" && a.text != "or" && a.text != "and" && a.text != "if") ||
               a.type == Token::Type::string || a.type == Token::Type::integer || a.type == Token::Type::number ||
               is_op("[") || is_op("{")) {
      t->args.push_back(postfix(primary()));
    }
    return t;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  int loops_ = 0;
};

}  // namespace

std::shared_ptr<const Template> parse_template(std::string_view source) { return Parser(lex_template(source)).run(); }

}  // namespace vramfit::chat
