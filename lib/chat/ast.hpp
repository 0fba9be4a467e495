// The parsed form of a chat template: statements (text, output, if, for, set, macro ...) holding
// expressions. The parser (parser.cpp) builds it, the renderer (render.cpp) walks it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/builtins.hpp"
#include "chat/value.hpp"

namespace vramfit::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,      // value
    name,         // name
    list,         // args: the items
    tuple,        // args: the items (a list at run time)
    dict,         // args: key0, value0, key1, value1 ...
    attr,         // args[0].name
    index,        // args[0][args[1]]
    slice,        // args[0][args[1]:args[2]:args[3]], absent parts null
    call,         // args[0](args[1..]); the last kwnames.size() arguments are keyword arguments
    filter,       // args[0] | name(args[1..]) via filter_fn; kwnames as call
    test,         // args[0] is [not] name(args[1..]) via test_fn; kwnames as call
    unary,        // name ("-" or "+") args[0]
    binary,       // args[0] name args[1]; name one of + - * / // % ** ~
    logical_and,  // args[0] and args[1] (Python: returns an operand)
    logical_or,   // args[0] or args[1]
    logical_not,  // not args[0]
    compare,      // args[0] ops[0] args[1] ops[1] args[2] ... (chained as Python)
    conditional,  // args[0] if args[1] else args[2] (args[2] null: undefined)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::string> kwnames;
  std::vector<std::string> ops;
  bool negated = false;  // test: `is not`
  FilterFn filter_fn = nullptr;
  TestFn test_fn = nullptr;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    text,       // text
    output,     // {{ expr }}
    if_,        // conds[i] -> bodies[i]; one body more than conds: the else branch
    for_,       // for targets in expr [if conds[0]]: bodies[0] [else bodies[1]]
    set,        // set targets = expr, or set targets[0].attr = expr
    set_block,  // set targets[0] %}bodies[0]{% endset
    macro,      // macro name(targets = defaults[i]): bodies[0]
    do_,        // do expr
    break_,
    continue_,
  };
  Kind kind;
  int line = 0;
  std::string text;
  std::string name;
  std::string attr;
  ExprPtr expr;
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;
  std::vector<std::string> targets;
  std::vector<ExprPtr> defaults;  // macro parameters' defaults (null: none)
};

// A parsed template. Immutable after parsing, so any number of threads may render it at once.
struct Template {
  Body body;
};

// Parses jinja source with trim_blocks and lstrip_blocks on. Throws Error(format) naming the line
// and the construct for a syntax error, Error(unsupported) for a tag, filter or test vramfit does
// not implement.
std::shared_ptr<const Template> parse_template(std::string_view source);

}  // namespace vramfit::chat
