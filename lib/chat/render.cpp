#include "chat/render.hpp"

#include <cmath>
#include <ctime>
#include <map>

#include "chat/builtins.hpp"
#include "chat/text.hpp"
#include "common/error.hpp"

namespace vramfit::chat {

// Variables of one scope (the template's top level, a for loop, a macro call), chained to the
// enclosing one for reading.
struct Scope {
  Scope *parent = nullptr;
  std::map<std::string, Value, std::less<>> vars;

  Value *find(std::string_view name) {
    for (Scope *s = this; s; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
  void set(const std::string &name, Value v) { vars.insert_or_assign(name, std::move(v)); }
};

namespace {

enum class Flow { normal, break_loop, continue_loop };

std::string python_op_error(std::string_view op, const Value &a, const Value &b) {
  return fmt::format("unsupported operand types for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

void require_defined(const Value &v) {
  if (v.is_undefined()) template_error("'{}' is undefined", v.undefined_what());
}

bool numeric(const Value &v) { return v.is_number() || v.is_bool(); }
int64_t int_of(const Value &v) { return v.is_bool() ? int64_t(v.as_bool()) : v.as_int(); }
double double_of(const Value &v) { return v.is_bool() ? double(v.as_bool()) : v.as_double(); }

Value repeat(const Value &seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value("") : Value(Array{});
  if (seq.is_string()) {
    const std::string &s = seq.as_string();
    if (!s.empty()) check_string_size(s.size() * size_t(std::min<int64_t>(n, int64_t(kMaxStringBytes) + 1)));
    std::string out;
    for (int64_t i = 0; i < n && !s.empty(); ++i) out += s;
    return Value(std::move(out));
  }
  const Array &a = seq.as_array();
  if (!a.empty()) check_item_count(a.size() * size_t(std::min<int64_t>(n, int64_t(kMaxItems) + 1)));
  Array out;
  for (int64_t i = 0; i < n && !a.empty(); ++i) out.insert(out.end(), a.begin(), a.end());
  return Value(std::move(out));
}

Value arithmetic(const std::string &op, const Value &a, const Value &b) {
  require_defined(a);
  require_defined(b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_string_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_array() && b.is_array()) {
      check_item_count(a.as_array().size() + b.as_array().size());
      Array out = a.as_array();
      out.insert(out.end(), b.as_array().begin(), b.as_array().end());
      return Value(std::move(out));
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.is_array()) && (b.is_int() || b.is_bool())) return repeat(a, int_of(b));
    if ((b.is_string() || b.is_array()) && (a.is_int() || a.is_bool())) return repeat(b, int_of(a));
  }
  if (op == "%" && a.is_string()) return Value(percent_format(a.as_string(), b.is_array() ? b.as_array() : Array{b}));
  if (!numeric(a) || !numeric(b)) template_error("{}", python_op_error(op, a, b));
  const bool ints = !a.is_float() && !b.is_float();
  if (ints) {
    const int64_t x = int_of(a), y = int_of(b);
    int64_t r = 0;
    bool overflow = false;
    if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
    else if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
    else if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
    else if (op == "/") {
      if (y == 0) template_error("division by zero");
      return Value(double(x) / double(y));
    } else if (op == "//" || op == "%") {
      if (y == 0) template_error("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) template_error("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
        --q;
        m += y;
      }
      r = op == "//" ? q : m;
    } else if (op == "**") {
      if (y < 0) return Value(std::pow(double(x), double(y)));
      r = 1;
      for (int64_t i = 0; i < y && !overflow; ++i) overflow = __builtin_mul_overflow(r, x, &r);
    }
    if (overflow) template_error("integer overflow in '{}'", op);
    return Value(r);
  }
  const double x = double_of(a), y = double_of(b);
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "**") return Value(std::pow(x, y));
  if (y == 0) template_error("float division by zero");
  if (op == "/") return Value(x / y);
  const double q = std::floor(x / y);
  return Value(op == "//" ? q : x - q * y);
}

bool contains(const Value &container, const Value &item) {
  switch (container.kind()) {
    case Value::Kind::undefined: return false;
    case Value::Kind::string:
      if (!item.is_string()) template_error("'in <string>' requires a string as left operand, not {}", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::array:
      for (const Value &x : container.as_array())
        if (equal(x, item)) return true;
      return false;
    case Value::Kind::object: return item.is_string() && container.as_object().find(item.as_string());
    default: template_error("argument of type '{}' is not iterable", container.type_name());
  }
}

bool compare(const std::string &op, const Value &a, const Value &b) {
  if (op == "==") return equal(a, b);
  if (op == "!=") return !equal(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  require_defined(a);
  require_defined(b);
  if (op == "<") return less(a, b, true);
  if (op == ">") return less(b, a, true);
  if (op == "<=") return !less(b, a, true);
  return !less(a, b, true);  // >=
}

// Python's slice bounds for a sequence of n items.
std::vector<size_t> slice_indices(int64_t n, const Value &start, const Value &stop, const Value &step_v) {
  auto opt = [](const Value &v, const char *what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) template_error("slice {} must be an integer, not {}", what, v.type_name());
    return int_of(v);
  };
  const int64_t step = opt(step_v, "step").value_or(1);
  if (step == 0) template_error("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v < 0 ? *v + n : *v;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t from = clamp(opt(start, "start"), step > 0 ? 0 : n - 1);
  const int64_t to = clamp(opt(stop, "stop"), step > 0 ? n : -1);
  std::vector<size_t> out;
  for (int64_t i = from; step > 0 ? i < to : i > to; i += step) out.push_back(size_t(i));
  return out;
}

Value get_attr(const Value &obj, const std::string &name) {
  if (obj.is_undefined()) template_error("'{}' is undefined (reading its attribute '{}')", obj.undefined_what(), name);
  if (obj.is_object()) {
    // As jinja2's getattr: a dict's own methods (items, keys, values, get) come before its keys.
    if (!obj.as_object().is_namespace) {
      Value method = bind_method(obj, name);
      if (!method.is_undefined()) return method;
    }
    const Value *v = obj.as_object().find(name);
    return v ? *v : Value::undefined(name);
  }
  return bind_method(obj, name);
}

Value get_item(const Value &obj, const Value &key) {
  if (obj.is_undefined()) template_error("'{}' is undefined (reading an item of it)", obj.undefined_what());
  if (obj.is_object()) {
    if (!key.is_string()) return Value::undefined(to_str(key));
    const Value *v = obj.as_object().find(key.as_string());
    return v ? *v : Value::undefined(key.as_string());
  }
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = int_of(key);
    if (obj.is_array()) {
      const int64_t n = int64_t(obj.as_array().size());
      if (i < 0) i += n;
      return i >= 0 && i < n ? obj.as_array()[size_t(i)] : Value::undefined(fmt::format("index {}", int_of(key)));
    }
    const auto offsets = utf8_offsets(obj.as_string());
    const int64_t n = int64_t(offsets.size()) - 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined(fmt::format("index {}", int_of(key)));
    return Value(obj.as_string().substr(offsets[size_t(i)], offsets[size_t(i) + 1] - offsets[size_t(i)]));
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined(to_str(key));
}

Value get_slice(const Value &obj, const Value &start, const Value &stop, const Value &step) {
  if (obj.is_undefined()) template_error("'{}' is undefined (slicing it)", obj.undefined_what());
  if (obj.is_array()) {
    Array out;
    for (size_t i : slice_indices(int64_t(obj.as_array().size()), start, stop, step)) out.push_back(obj.as_array()[i]);
    return Value(std::move(out));
  }
  if (obj.is_string()) {
    const auto offsets = utf8_offsets(obj.as_string());
    std::string out;
    for (size_t i : slice_indices(int64_t(offsets.size()) - 1, start, stop, step))
      out.append(obj.as_string(), offsets[i], offsets[i + 1] - offsets[i]);
    return Value(std::move(out));
  }
  template_error("'{}' object cannot be sliced", obj.type_name());
}

std::string strftime_at(const std::string &format, const std::optional<std::chrono::sys_seconds> &now) {
  const std::time_t t = now ? std::time_t(now->time_since_epoch().count())
                            : std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  if (now) gmtime_r(&t, &tm);
  else localtime_r(&t, &tm);
  if (format.empty()) return "";
  for (size_t size = 256; size <= 65536; size *= 4) {
    std::string buf(size, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    if (n > 0) return buf.substr(0, n);
  }
  return "";
}

Value make_callable(std::string name, std::function<Value(Renderer &, CallArgs &)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->fn = std::move(fn);
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

// jinja's global functions (range, namespace, dict, raise_exception) and transformers'
// strftime_now.
void define_globals(Scope &globals, const RenderOptions &options) {
  globals.set("range", make_callable("range", [](Renderer &, CallArgs &a) {
                int64_t start = 0, stop = 0, step = 1;
                auto i = [&](size_t k) { return a.positional[k].is_bool() ? int64_t(a.positional[k].as_bool()) : a.positional[k].as_int(); };
                for (const Value &v : a.positional)
                  if (!v.is_int() && !v.is_bool()) template_error("range() needs integers, not {}", v.type_name());
                if (a.positional.size() == 1) stop = i(0);
                else if (a.positional.size() == 2 || a.positional.size() == 3) {
                  start = i(0);
                  stop = i(1);
                  if (a.positional.size() == 3) step = i(2);
                } else {
                  template_error("range() takes 1 to 3 arguments");
                }
                if (step == 0) template_error("range() step must not be zero");
                const double count = std::ceil((double(stop) - double(start)) / double(step));
                if (count > double(kMaxItems)) check_item_count(kMaxItems + 1);
                Array out;
                for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.emplace_back(k);
                return Value(std::move(out));
              }));
  auto from_arguments = [](Value obj, CallArgs &a) {
    for (const Value &p : a.positional) {
      if (!p.is_object()) template_error("expected keyword arguments or a dict, not {}", p.type_name());
      for (const auto &[k, v] : p.as_object().items) obj.as_object().set(k, v);
    }
    for (const auto &[k, v] : a.named) obj.as_object().set(k, v);
    return obj;
  };
  globals.set("namespace", make_callable("namespace", [from_arguments](Renderer &, CallArgs &a) {
                return from_arguments(Value::name_space(), a);
              }));
  globals.set("dict", make_callable("dict", [from_arguments](Renderer &, CallArgs &a) {
                return from_arguments(Value::object(), a);
              }));
  globals.set("raise_exception", make_callable("raise_exception", [](Renderer &, CallArgs &a) -> Value {
                throw TemplateError(ErrorCode::invalid_argument,
                                    fmt::format("raise_exception: {}", a.positional.empty() ? std::string() : to_str(a.positional[0])));
              }));
  globals.set("strftime_now", make_callable("strftime_now", [now = options.now](Renderer &, CallArgs &a) {
                if (a.positional.size() != 1 || !a.positional[0].is_string())
                  template_error("strftime_now() takes one format string");
                return Value(strftime_at(a.positional[0].as_string(), now));
              }));
}

}  // namespace

class Renderer {
 public:
  explicit Renderer(const RenderOptions &options) : options_(options) {}

  std::string run(const Template &tmpl, const Value &context) {
    MutationLog mutations;  // declared first: empties changed containers after the scopes are gone
    Scope globals;
    define_globals(globals, options_);
    Scope root{&globals, {}};
    if (context.is_object())
      for (const auto &[k, v] : context.as_object().items) root.set(k, v);
    root_ = &root;
    std::string out;
    exec(tmpl.body, root, out);
    return out;
  }

  Value call_macro(const Stmt &m, CallArgs &a) {
    Scope local{root_, {}};
    if (a.positional.size() > m.targets.size())
      template_error("macro '{}' takes {} arguments, {} given", m.name, m.targets.size(), a.positional.size());
    for (const auto &[key, value] : a.named)
      if (std::find(m.targets.begin(), m.targets.end(), key) == m.targets.end())
        template_error("macro '{}' has no parameter '{}'", m.name, key);
    for (size_t i = 0; i < m.targets.size(); ++i) {
      const Value *given = argument(a, i, m.targets[i]);
      if (given) local.set(m.targets[i], *given);
      else if (m.defaults[i]) local.set(m.targets[i], eval(*m.defaults[i], local));
      else local.set(m.targets[i], Value::undefined(m.targets[i]));
    }
    std::string out;
    exec(m.bodies[0], local, out);
    return Value(std::move(out));
  }

 private:
  // Counts work and nesting; the limits turn a runaway template into an Error.
  struct Guard {
    explicit Guard(Renderer &r) : renderer(r) {
      if (++renderer.steps_ > renderer.options_.max_steps)
        throw TemplateError(ErrorCode::invalid_argument,
                            fmt::format("the template did more than {} steps (an endless loop?)", renderer.options_.max_steps));
      if (++renderer.depth_ > renderer.options_.max_depth)
        throw TemplateError(ErrorCode::invalid_argument,
                            fmt::format("calls nested more than {} deep (endless recursion?)", renderer.options_.max_depth));
    }
    ~Guard() { --renderer.depth_; }
    Renderer &renderer;
  };

  [[noreturn]] static void rethrow_with_line(const TemplateError &e, int line) {
    detail::fail(e.code, "chat template line {}: {}", line, e.what());
  }

  Flow exec(const Body &body, Scope &scope, std::string &out) {
    for (const StmtPtr &s : body) {
      const Flow f = exec_statement(*s, scope, out);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow exec_statement(const Stmt &s, Scope &scope, std::string &out) {
    try {
      Guard guard(*this);
      return exec_kind(s, scope, out);
    } catch (const TemplateError &e) {
      rethrow_with_line(e, s.line);
    }
  }

  Flow exec_kind(const Stmt &s, Scope &scope, std::string &out) {
    switch (s.kind) {
      case Stmt::Kind::text: append(out, s.text); return Flow::normal;
      case Stmt::Kind::output: append(out, to_str(eval(*s.expr, scope))); return Flow::normal;
      case Stmt::Kind::if_:
        for (size_t i = 0; i < s.conds.size(); ++i)
          if (eval(*s.conds[i], scope).truthy()) return exec(s.bodies[i], scope, out);
        if (s.bodies.size() > s.conds.size()) return exec(s.bodies.back(), scope, out);
        return Flow::normal;
      case Stmt::Kind::for_: exec_for(s, scope, out); return Flow::normal;
      case Stmt::Kind::set: exec_set(s, scope); return Flow::normal;
      case Stmt::Kind::set_block: {
        std::string text;
        exec(s.bodies[0], scope, text);
        scope.set(s.targets[0], Value(std::move(text)));
        return Flow::normal;
      }
      case Stmt::Kind::macro: {
        const Stmt *macro = &s;
        scope.set(s.name, make_callable(s.name, [macro](Renderer &r, CallArgs &a) { return r.call_macro(*macro, a); }));
        return Flow::normal;
      }
      case Stmt::Kind::do_: eval(*s.expr, scope); return Flow::normal;
      case Stmt::Kind::break_: return Flow::break_loop;
      case Stmt::Kind::continue_: return Flow::continue_loop;
    }
    return Flow::normal;
  }

  static void append(std::string &out, const std::string &text) {
    check_string_size(out.size() + text.size());
    out += text;
  }

  static void bind(Scope &scope, const std::vector<std::string> &targets, const Value &v) {
    if (targets.size() == 1) return scope.set(targets[0], v);
    if (!v.is_array() || v.as_array().size() != targets.size())
      template_error("cannot unpack {} into {} variables", v.is_array() ? fmt::format("{} values", v.as_array().size()) : std::string(v.type_name()),
                     targets.size());
    for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], v.as_array()[i]);
  }

  void exec_set(const Stmt &s, Scope &scope) {
    Value v = eval(*s.expr, scope);
    if (s.attr.empty()) return bind(scope, s.targets, v);
    Value *target = scope.find(s.targets[0]);
    if (!target || !target->is_object() || !target->as_object().is_namespace)
      template_error("cannot set '{}.{}': only namespace() objects take attributes", s.targets[0], s.attr);
    MutationLog::note(*target);
    target->as_object().set(s.attr, std::move(v));
  }

  void exec_for(const Stmt &s, Scope &scope, std::string &out) {
    Array items = iterate(eval(*s.expr, scope));
    Scope loop_scope{&scope, {}};
    if (!s.conds.empty()) {  // `for x in xs if cond`: loop.length counts the kept items
      Array kept;
      for (const Value &item : items) {
        Guard guard(*this);
        bind(loop_scope, s.targets, item);
        if (eval(*s.conds[0], loop_scope).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const int64_t n = int64_t(items.size());
    LoopObject loop(items);
    loop_scope.set("loop", loop.value);
    for (int64_t i = 0; i < n; ++i) {
      Guard guard(*this);
      bind(loop_scope, s.targets, items[size_t(i)]);
      loop.update(i);
      if (exec(s.bodies[0], loop_scope, out) == Flow::break_loop) break;
    }
    if (n == 0 && s.bodies.size() > 1) exec(s.bodies[1], loop_scope, out);
  }

  // jinja's `loop`: one object per loop whose fields change with each iteration (as jinja2's
  // LoopContext), updated in place because it is read on every iteration of every loop.
  struct LoopObject {
    explicit LoopObject(const Array &loop_items) : items(loop_items), value(Value::object()) {
      Object &o = value.as_object();
      for (const char *key : {"index0", "index", "revindex0", "revindex", "first", "last", "length", "depth", "depth0",
                              "previtem", "nextitem"})
        o.set(key, Value());
      o.set("cycle", make_callable("loop.cycle", [index = index0](Renderer &, CallArgs &a) {
              if (a.positional.empty()) template_error("loop.cycle() needs arguments");
              return a.positional[size_t(*index) % a.positional.size()];
            }));
    }
    void update(int64_t i) {
      const int64_t n = int64_t(items.size());
      *index0 = i;
      auto &f = value.as_object().items;  // in the order set above
      f[0].second = Value(i);
      f[1].second = Value(i + 1);
      f[2].second = Value(n - i - 1);
      f[3].second = Value(n - i);
      f[4].second = Value(i == 0);
      f[5].second = Value(i == n - 1);
      f[6].second = Value(n);
      f[7].second = Value(1);
      f[8].second = Value(0);
      f[9].second = i > 0 ? items[size_t(i - 1)] : Value::undefined("loop.previtem");
      f[10].second = i + 1 < n ? items[size_t(i + 1)] : Value::undefined("loop.nextitem");
    }
    const Array &items;
    std::shared_ptr<int64_t> index0 = std::make_shared<int64_t>(0);
    Value value;
  };

  Value eval(const Expr &e, Scope &scope) {
    try {
      Guard guard(*this);
      return eval_kind(e, scope);
    } catch (const TemplateError &err) {
      rethrow_with_line(err, e.line);
    }
  }

  CallArgs arguments(const Expr &e, Scope &scope) {
    CallArgs a;
    a.line = e.line;
    const size_t n_named = e.kwnames.size();
    const size_t n_positional = e.args.size() - 1 - n_named;
    for (size_t i = 1; i < e.args.size(); ++i) {
      Value v = eval(*e.args[i], scope);
      if (i - 1 < n_positional) a.positional.push_back(std::move(v));
      else a.named.emplace_back(e.kwnames[i - 1 - n_positional], std::move(v));
    }
    return a;
  }

  Value eval_kind(const Expr &e, Scope &scope) {
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: {
        const Value *v = scope.find(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      case Expr::Kind::list:
      case Expr::Kind::tuple: {
        Array items;
        for (const ExprPtr &x : e.args) items.push_back(eval(*x, scope));
        return Value(std::move(items));
      }
      case Expr::Kind::dict: {
        Value d = Value::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value key = eval(*e.args[i], scope);
          if (!key.is_string()) template_error("dict keys must be strings here, not {}", key.type_name());
          d.as_object().set(key.as_string(), eval(*e.args[i + 1], scope));
        }
        return d;
      }
      case Expr::Kind::attr: return get_attr(eval(*e.args[0], scope), e.name);
      case Expr::Kind::index: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
      case Expr::Kind::slice: {
        auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i], scope) : Value(nullptr); };
        return get_slice(eval(*e.args[0], scope), part(1), part(2), part(3));
      }
      case Expr::Kind::call: {
        const Value callee = eval(*e.args[0], scope);
        if (!callee.is_callable()) {
          if (callee.is_undefined()) template_error("'{}' is undefined (called as a function)", callee.undefined_what());
          template_error("'{}' object is not callable", callee.type_name());
        }
        CallArgs a = arguments(e, scope);
        return callee.as_callable().fn(*this, a);
      }
      case Expr::Kind::filter: {
        const Value operand = eval(*e.args[0], scope);
        CallArgs a = arguments(e, scope);
        return e.filter_fn(operand, a);
      }
      case Expr::Kind::test: {
        const Value operand = eval(*e.args[0], scope);
        CallArgs a = arguments(e, scope);
        return Value(e.test_fn(operand, a) != e.negated);
      }
      case Expr::Kind::unary: {
        const Value v = eval(*e.args[0], scope);
        require_defined(v);
        if (!numeric(v)) template_error("bad operand type for unary {}: '{}'", e.name, v.type_name());
        if (e.name == "+") return v.is_bool() ? Value(int_of(v)) : v;
        if (v.is_float()) return Value(-v.as_double());
        if (int_of(v) == INT64_MIN) template_error("integer overflow");
        return Value(-int_of(v));
      }
      case Expr::Kind::binary: {
        const Value a = eval(*e.args[0], scope), b = eval(*e.args[1], scope);
        if (e.name == "~") {
          std::string s = to_str(a);
          check_string_size(s.size() + to_str(b).size());
          return Value(s + to_str(b));
        }
        return arithmetic(e.name, a, b);
      }
      case Expr::Kind::logical_and: {
        Value a = eval(*e.args[0], scope);
        return a.truthy() ? eval(*e.args[1], scope) : a;
      }
      case Expr::Kind::logical_or: {
        Value a = eval(*e.args[0], scope);
        return a.truthy() ? a : eval(*e.args[1], scope);
      }
      case Expr::Kind::logical_not: return Value(!eval(*e.args[0], scope).truthy());
      case Expr::Kind::compare: {
        Value left = eval(*e.args[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.args[i + 1], scope);
          if (!compare(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::conditional:
        if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
        return e.args.size() > 2 ? eval(*e.args[2], scope) : Value::undefined("conditional without else");
    }
    return Value();
  }

  const RenderOptions &options_;
  Scope *root_ = nullptr;
  uint64_t steps_ = 0;
  int depth_ = 0;
};

std::string render(const Template &tmpl, const Value &context, const RenderOptions &options) {
  return Renderer(options).run(tmpl, context);
}

}  // namespace vramfit::chat
