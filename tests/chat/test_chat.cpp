// Chat templates: the real Hugging Face templates of ../shared/chat render every case byte for
// byte; jinja semantics one construct at a time; errors name the line; hostile templates stop.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "chat/ast.hpp"
#include "chat/json.hpp"
#include "chat/render.hpp"
#include "test_data.hpp"
#include "vramfit/chat.hpp"
#include "vramfit/error.hpp"

using vramfit::ChatMessage;
using vramfit::ChatTemplate;
using vramfit::Error;
using vramfit::ErrorCode;
namespace chat = vramfit::chat;

namespace {

std::string read_file(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Renders `source` with the given variables (a JSON object) and optional limits.
std::string render(std::string_view source, std::string_view vars = "{}", chat::RenderOptions options = {}) {
  auto tmpl = chat::parse_template(source);
  return chat::render(*tmpl, chat::parse_json(vars), options);
}

// The message of the Error that rendering throws ("" when none is thrown).
std::string error_of(std::string_view source, std::string_view vars = "{}", chat::RenderOptions options = {},
                     ErrorCode *code = nullptr) {
  try {
    render(source, vars, options);
  } catch (const Error &e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

const char *const kFamilies[] = {"llama3", "llama3.1", "qwen3", "gemma3", "deepseek-v3", "gpt-oss"};

}  // namespace

TEST_CASE("every case of the real chat templates renders byte for byte") {
  for (const char *family : kFamilies) {
    auto path = vramfit::test::test_data(std::string("chat/") + family + ".json");
    if (!path) return;
    const chat::Value doc = chat::parse_json(read_file(*path), path->string());
    const chat::Object &d = doc.as_object();
    auto text = [&](const char *key) {
      const chat::Value *v = d.find(key);
      return v && v->is_string() ? v->as_string() : std::string();
    };
    ChatTemplate tmpl(text("template"), text("bos_token"), text("eos_token"));
    if (!text("fixed_date").empty()) tmpl.set_date(text("fixed_date"));
    int passed = 0, total = 0;
    for (const chat::Value &c : d.find("cases")->as_array()) {
      const chat::Object &o = c.as_object();
      const std::string id = o.find("id")->as_string();
      const bool agp = o.find("add_generation_prompt")->as_bool();
      const chat::Value *extra = o.find("extra_context");
      const std::string extra_json = extra ? chat::dump_json(*extra) : std::string();
      const std::string &expected = o.find("expected")->as_string();
      // Both entry points: JSON messages, and ChatMessage structs.
      const std::string from_json = tmpl.apply_json(chat::dump_json(*o.find("messages")), agp, extra_json);
      std::vector<ChatMessage> messages;
      for (const chat::Value &m : o.find("messages")->as_array())
        messages.push_back({m.as_object().find("role")->as_string(), m.as_object().find("content")->as_string()});
      const std::string from_structs = tmpl.apply(messages, agp, extra_json);
      CAPTURE(family);
      CAPTURE(id);
      CHECK(from_json == expected);
      CHECK(from_structs == expected);
      ++total;
      passed += from_json == expected && from_structs == expected;
    }
    MESSAGE(std::string(family) << ": " << passed << "/" << total << " cases byte-identical");
  }
}

TEST_CASE("templates of the vocab GGUF files, and the default for a file without one") {
  auto llama3 = vramfit::test::test_data("vocab/ggml-vocab-llama3.gguf");
  auto gptoss = vramfit::test::test_data("vocab/ggml-vocab-gpt-oss.gguf");
  auto ref = vramfit::test::test_data("chat/llama3.json");
  if (!llama3 || !gptoss || !ref) return;
  const ChatTemplate t = ChatTemplate::from_gguf(*llama3);
  CHECK_FALSE(t.is_default());
  CHECK(t.bos_token() == "<|begin_of_text|>");
  const chat::Value doc = chat::parse_json(read_file(*ref));
  CHECK(t.source() == doc.as_object().find("template")->as_string());
  const std::vector<ChatMessage> hi = {{"user", "Hi"}};
  CHECK(t.apply(hi) == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n");

  const ChatTemplate d = ChatTemplate::from_gguf(*gptoss);
  CHECK(d.is_default());
  CHECK(d.source() == ChatTemplate::default_source());
  CHECK(d.bos_token() == "<|startoftext|>");
  CHECK(d.eos_token() == "<|return|>");
  const std::vector<ChatMessage> two = {{"system", "Be brief."}, {"user", "Hi"}};
  CHECK(d.apply(two) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(d.apply(two, false) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST_CASE("whitespace control: trim_blocks, lstrip_blocks, - and +") {
  CHECK(render("{% if true %}\nyes\n{% endif %}\nend") == "yes\nend");
  CHECK(render("  {% if true %}x{% endif %}") == "x");
  CHECK(render("a  {% if true %}x{% endif %}") == "a  x");  // not at a line start
  CHECK(render("line\n    {% if true %}\n    x\n    {% endif %}\n") == "line\n    x\n");
  CHECK(render("a  {{- 'b' -}}  \n c") == "abc");
  CHECK(render("  {%+ if true %}x{% endif %}") == "  x");
  CHECK(render("{# a comment #}\nz") == "z");
  CHECK(render("  {#- c -#}  z") == "z");
  CHECK(render("{{ 'x' }}\ny") == "x\ny");  // trim_blocks leaves variable tags alone
  CHECK(render("a\r\nb\n") == "a\nb");      // newlines normalized, one final newline dropped
  CHECK(render("{% raw %}\n{{ x }}{% if %}\n  {% endraw %}!") == "{{ x }}{% if %}\n!");
  CHECK(render("a {%- raw -%}  {{ y }}  {%- endraw %}") == "a{{ y }}");
}

TEST_CASE("expressions follow Python and jinja2") {
  CHECK(render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}") == "7 3 -4 2 3.5 1024");
  CHECK(render("{{ 'a' ~ 1 ~ none ~ true }}") == "a1NoneTrue");
  CHECK(render("{{ 'ab' * 3 }}{{ [1] + [2] }}") == "ababab[1, 2]");
  CHECK(render("{{ 'x' + 'y' | upper }}") == "xY");  // filters bind tighter than +
  CHECK(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 2 not in [1, 3] }}") == "True False True True");
  CHECK(render("{{ none or 'd' }} {{ 0 and 1 }} {{ not [] }}") == "d 0 True");
  CHECK(render("{{ 'y' if false }}|{{ 'y' if 1 else 'n' }}") == "|y");
  CHECK(render("{{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 2.0 }} {{ 1e16 }} {{ 123456.789 }}") ==
        "0.30000000000000004 1e-05 2.0 1e+16 123456.789");
  CHECK(render("{{ {'a': 1, 'b': [true, none, 'it\\'s']} }}") == "{'a': 1, 'b': [True, None, \"it's\"]}");
  CHECK(render("{{ x }}|{{ x is defined }}|{{ x is undefined }}") == "|False|True");
  CHECK(render("{{ 1 == 1.0 }} {{ true == 1 }} {{ [1, 'a'] == [1, 'a'] }} {{ 'a' != 'a' }}") == "True True True False");
}

TEST_CASE("subscripts, slices and attribute lookup") {
  const char *vars = R"({"m": [{"role": "user", "content": "héllo"}, {"role": "assistant"}], "s": "héllo"})";
  CHECK(render("{{ m[0].role }} {{ m[0]['content'] }} {{ m[-1].role }} {{ m[1].content is defined }}", vars) ==
        "user héllo assistant False");
  CHECK(render("{{ m[5] is defined }}", vars) == "False");
  CHECK(render("{{ s[1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[-2:] }}{{ s|length }}", vars) == "éélolléhlo5");
  CHECK(render("{{ [1, 2, 3, 4][::2] }} {{ [1, 2, 3][5:] }} {{ (m[1:] | length) }}", vars) == "[1, 3] [] 1");
  CHECK(render("{% for m2 in m[::-1] %}{{ m2.role }},{% endfor %}", vars) == "assistant,user,");
}

TEST_CASE("statements: for with loop, set, namespace, macro, break/continue") {
  CHECK(render("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
               "{{ loop.length }}{{ loop.revindex }};{% endfor %}") ==
        "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
  CHECK(render("{% for x in [] %}a{% else %}empty{% endfor %}") == "empty");
  CHECK(render("{% for x in range(10) if x is odd %}{{ x }}{% endfor %}") == "13579");
  CHECK(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}") == "a=1 b=2 ");
  CHECK(render("{% for k, v in {'a': 1} | items %}{{ k }}{{ v }}{% endfor %}") == "a1");
  CHECK(render("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}"
               "{{ x }}{% endfor %}") == "013");
  // A set inside a loop stays in the loop; a namespace carries values out.
  CHECK(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}") == "1");
  CHECK(render("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}") == "4");
  CHECK(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}") == "12");
  CHECK(render("{% set t %}in {{ 1 + 1 }}{% endset %}[{{ t }}]") == "[in 2]");
  CHECK(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
               "{{ greet('A') }} {{ greet('B', punct='?') }}") == "Hi A! Hi B?");
  CHECK(render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * (fact(n - 1) | int) }}{% endif %}{% endmacro %}"
               "{{ fact(10) }}") == "3628800");
  CHECK(render("{% set xs = [] %}{% do xs.append(1) %}{% do xs.append(2) %}{{ xs }}") == "[1, 2]");
  CHECK(render("{% if false %}a{% elif none %}b{% elif 'x' %}c{% else %}d{% endif %}") == "c");
}

TEST_CASE("filters, tests and methods") {
  CHECK(render("[{{ '  a b \t\n' | trim }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\nq\\n'.lstrip('\\n') }}]"
               "[{{ 'q  '.rstrip() }}]") == "[a b][a][q\n][q]");
  CHECK(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a</think>b</think>c'.split('</think>')[-1] }}") ==
        "['a', 'b', '', 'c'] ['a', 'b'] c");
  CHECK(render("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'aXa'.replace('a', 'b') }}") ==
        "True True bXb");
  CHECK(render("{{ 'ab' | upper }} {{ 'AB' | lower }} {{ 'hello world' | title }} {{ 'hELLO' | capitalize }}") ==
        "AB ab Hello World Hello");
  CHECK(render("{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort | join('-') }} {{ [1, 2] | reverse | list }}") ==
        "[1, 2, 3] A-b-c [2, 1]");
  CHECK(render("{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}{{ [1, 2, 3] | length }}{{ 'abc' | count }}") == "1333");
  CHECK(render("{{ x | default('d') }} {{ '' | default('e', true) }} {{ '5' | int + 1 }} {{ '2.5' | float }}") ==
        "d e 6 2.5");
  CHECK(render("{{ ['a', 'code_interpreter', 'b'] | reject('equalto', 'code_interpreter') | join(', ') }}") == "a, b");
  CHECK(render("{{ [{'n': 1}, {'n': 2}] | map(attribute='n') | list }} {{ ['a'] | map('upper') | list }}") ==
        "[1, 2] ['A']");
  CHECK(render("{{ [{'t': 1}, {'t': 0}] | selectattr('t') | list | length }}") == "1");
  CHECK(render("{{ {'a': 'x'} is mapping }} {{ 'a' is string }} {{ [1] is iterable }} {{ 1 is number }} "
               "{{ none is none }} {{ false is false }} {{ 4 is divisibleby 2 }} {{ 3 is odd }}") ==
        "True True True True True True True True");
  CHECK(render("{{ {'b': 1, 'a': [1, 2.5, 'é\"\\n']} | tojson }}") == R"({"b": 1, "a": [1, 2.5, "é\"\n"]})");
  CHECK(render("{{ {'a': [1, {}], 'b': []} | tojson(indent=2) }}") == "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
  CHECK(render("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b', 'z') }} {{ {'a': 1}.keys() | list }}") == "1 z ['a']");
  CHECK(render("{{ 'a' ~ x | string }}") == "a");
  CHECK(render("{{ '%s is %d (%.2f) %r 100%%' % ('x', 42, 0.5, 'q') }}|{{ '%5s|%-3d|' | format('ab', 7) }}") ==
        "x is 42 (0.50) 'q' 100%|   ab|7  |");
}

TEST_CASE("strftime_now uses the fixed date when one is set") {
  ChatTemplate t("{{ strftime_now('%Y-%m-%d %d %b %Y') }}");
  t.set_date("2025-08-05");
  CHECK(t.apply({}) == "2025-08-05 05 Aug 2025");
  CHECK_THROWS_AS(t.set_date("2025-02-30"), Error);
  CHECK_THROWS_AS(t.set_date("yesterday"), Error);
  t.set_now(std::chrono::sys_days(std::chrono::year(2024) / 7 / 26) + std::chrono::hours(13));
  CHECK(t.apply({}) == "2024-07-26 26 Jul 2024");
  ChatTemplate clock("{{ strftime_now('%Y') }}");
  CHECK(clock.apply({}).size() == 4);
}

TEST_CASE("extra variables override and add context") {
  ChatTemplate t("{{ add_generation_prompt }}{% if enable_thinking is defined and enable_thinking is false %} no{% endif %}"
                 "{{ bos_token is defined }}");
  CHECK(t.apply({}, true) == "TrueFalse");
  CHECK(t.apply({}, true, R"({"enable_thinking": false})") == "True noFalse");
  CHECK(t.apply({}, true, R"({"add_generation_prompt": false})") == "FalseFalse");
  CHECK_THROWS_AS(t.apply({}, true, "[1]"), Error);
  CHECK_THROWS_AS(t.apply({}, true, "{bad json}"), Error);
}

TEST_CASE("syntax errors name the line and the construct") {
  auto parse_error = [](std::string_view src, ErrorCode *code = nullptr) -> std::string {
    try {
      ChatTemplate t(src);
    } catch (const Error &e) {
      if (code) *code = e.code();
      return e.what();
    }
    return "";
  };
  ErrorCode code{};
  std::string e = parse_error("line one\n{% if x %}\nno end\n", &code);
  CHECK(e.find("line 2") != std::string::npos);
  CHECK(e.find("'if' block is never closed") != std::string::npos);
  CHECK(code == ErrorCode::format);
  e = parse_error("a\nb {{ x ", &code);
  CHECK(e.find("line 2: unclosed tag '{{'") != std::string::npos);
  e = parse_error("\n\n{{ x | no_such_filter }}", &code);
  CHECK(e.find("line 3: unknown filter 'no_such_filter'") != std::string::npos);
  CHECK(code == ErrorCode::unsupported);
  e = parse_error("{{ x is frobnicated }}", &code);
  CHECK(e.find("line 1: unknown test 'frobnicated'") != std::string::npos);
  e = parse_error("{% endfor %}");
  CHECK(e.find("line 1: unexpected '{% endfor %}'") != std::string::npos);
  e = parse_error("{% include 'x' %}", &code);
  CHECK(code == ErrorCode::unsupported);
  e = parse_error("{{ 'abc }}");
  CHECK(e.find("line 1: unterminated string literal") != std::string::npos);
  e = parse_error("{# never closed");
  CHECK(e.find("unclosed comment") != std::string::npos);
  e = parse_error("{{ (1 + }}");
  CHECK(e.find("line 1: unexpected '}', expected ')'") != std::string::npos);
  e = parse_error("{{ 1 + }}");
  CHECK(e.find("line 1: expected an expression, found '}}'") != std::string::npos);
  e = parse_error("{% break %}");
  CHECK(e.find("outside a for loop") != std::string::npos);
  e = parse_error("{{ a b }}");
  CHECK(e.find("line 1: expected '}}'") != std::string::npos);
}

TEST_CASE("runtime errors name the line; raise_exception carries its message") {
  ErrorCode code{};
  std::string e = error_of("ok\n{{ raise_exception('Conversation roles must alternate') }}", "{}", {}, &code);
  CHECK(e == "chat template line 2: raise_exception: Conversation roles must alternate");
  CHECK(code == ErrorCode::invalid_argument);
  e = error_of("\n\n\n{{ 1 + 'a' }}", "{}", {}, &code);
  CHECK(e == "chat template line 4: unsupported operand types for +: 'int' and 'str'");
  CHECK(code == ErrorCode::format);
  e = error_of("{{ x.y }}");
  CHECK(e.find("line 1: 'x' is undefined") != std::string::npos);
  e = error_of("{{ 1 / 0 }}");
  CHECK(e.find("division by zero") != std::string::npos);
  e = error_of("{{ none() }}");
  CHECK(e.find("not callable") != std::string::npos);
  e = error_of("{% set s = 'a' %}{% set s.x = 1 %}");
  CHECK(e.find("only namespace() objects") != std::string::npos);
  // The gemma3 template refuses roles out of order, with its own message.
  auto gemma = vramfit::test::test_data("chat/gemma3.json");
  if (!gemma) return;
  const chat::Value doc = chat::parse_json(read_file(*gemma));
  ChatTemplate t(doc.as_object().find("template")->as_string(), "<bos>", "<end_of_turn>");
  const std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}};
  try {
    t.apply(bad);
    FAIL("no error");
  } catch (const Error &err) {
    CHECK(std::string(err.what()).find("raise_exception: Conversation roles must alternate user/assistant/user/assistant/...") !=
          std::string::npos);
    CHECK(std::string(err.what()).find("chat template line 19") != std::string::npos);
  }
}

TEST_CASE("hostile templates stop with an Error") {
  chat::RenderOptions small;
  small.max_steps = 100000;
  ErrorCode code{};
  std::string e = error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{}", small, &code);
  CHECK(e.find("more than 100000 steps") != std::string::npos);
  CHECK(code == ErrorCode::invalid_argument);
  // The default limit stops it too (10 million steps: well under a second).
  e = error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  CHECK(e.find("steps") != std::string::npos);
  e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  CHECK(e.find("nested more than 200 deep") != std::string::npos);
  e = error_of("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}");
  CHECK(e.find("MiB") != std::string::npos);
  CHECK(error_of("{{ 'x' * 1000000000000 }}").find("MiB") != std::string::npos);
  CHECK(error_of("{{ range(100000000000) | length }}").find("items") != std::string::npos);
  CHECK(error_of("{{ 2 ** 100 }}").find("overflow") != std::string::npos);
  // Values nested deeper than any stack could recurse are built, refused where they would be
  // walked, and freed without recursion; cycles are refused where walked and freed (no leak
  // under ASan).
  CHECK(render("{% set ns = namespace(x=[]) %}{% for i in range(200000) %}{% set ns.x = [ns.x] %}{% endfor %}"
               "{{ ns.x | length }}") == "1");
  CHECK(error_of("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                 "{{ ns.x }}").find("nested more than 256 deep") != std::string::npos);
  CHECK(render("{% set xs = [1] %}{% do xs.append(xs) %}{{ xs | length }}{{ xs[1][1][1][0] }}") == "21");
  CHECK(error_of("{% set xs = [] %}{% do xs.append(xs) %}{{ xs }}").find("nested more than") != std::string::npos);
  CHECK(error_of("{% set xs = [] %}{% do xs.append(xs) %}{{ xs | tojson }}").find("nested more than") != std::string::npos);
  CHECK(error_of("{% set xs = [] %}{% do xs.append(xs) %}{{ xs == [xs] }}").find("nested more than") != std::string::npos);
  CHECK(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}") == "True");
  // Deep nesting is refused by the parser instead of recursing without bound.
  std::string deep(5000, '(');
  deep = "{{ " + deep + "1" + std::string(5000, ')') + " }}";
  CHECK_THROWS_AS(ChatTemplate{deep}, Error);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  CHECK_THROWS_AS(ChatTemplate{ifs}, Error);
  CHECK_THROWS_AS(chat::parse_json(std::string(100000, '[')), Error);
}

TEST_CASE("mutated real templates only ever throw vramfit::Error") {
  // Byte-level mutations (delete, duplicate, swap in a jinja-significant character) of the real
  // templates, rendered over a small conversation: each either renders or throws Error; nothing
  // else escapes, and nothing crashes (this suite also runs under ASan/UBSan).
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string specials = "{}%#-+()[]'\".|~=<>:,\n ";
  int rendered = 0, refused = 0;
  for (const char *family : kFamilies) {
    auto path = vramfit::test::test_data(std::string("chat/") + family + ".json");
    if (!path) return;
    const std::string source = chat::parse_json(read_file(*path)).as_object().find("template")->as_string();
    for (int round = 0; round < 60; ++round) {
      std::string mutated = source;
      for (int k = 0; k < 3; ++k) {
        const size_t at = next() % mutated.size();
        switch (next() % 3) {
          case 0: mutated.erase(at, 1 + next() % 8); break;
          case 1: mutated.insert(at, mutated.substr(at, 1 + next() % 16)); break;
          default: mutated[at] = specials[next() % specials.size()];
        }
      }
      try {
        ChatTemplate t(mutated, "<s>", "</s>");
        t.set_date("2025-01-01");
        t.apply_json(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                         {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}])");
        ++rendered;
      } catch (const Error &) {
        ++refused;
      }
    }
  }
  MESSAGE("mutated templates: " << rendered << " rendered, " << refused << " refused with an Error");
  CHECK(rendered + refused == 360);
}

TEST_CASE("JSON in and out") {
  const chat::Value v = chat::parse_json(R"({"a": [1, -2.5e3, true, null, "x\u00e9\ud83d\ude00\n"], "b": {}})");
  CHECK(chat::dump_json(v) == "{\"a\": [1, -2500.0, true, null, \"xé😀\\n\"], \"b\": {}}");
  CHECK_THROWS_AS(chat::parse_json("[1, 2"), Error);
  CHECK_THROWS_AS(chat::parse_json("{\"a\" 1}"), Error);
  CHECK_THROWS_AS(chat::parse_json("[1] x"), Error);
  try {
    chat::parse_json("[\n  1,\n  nope\n]", "messages.json");
    FAIL("no error");
  } catch (const Error &e) {
    CHECK(std::string(e.what()) == "messages.json: line 3 column 3: unexpected character 'n'");
  }
  const auto messages = vramfit::parse_chat_messages(R"([{"role": "user", "content": "Hi", "name": "x"}])");
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].role == "user");
  CHECK(messages[0].content == "Hi");
  CHECK_THROWS_AS(vramfit::parse_chat_messages(R"([{"role": "user"}])"), Error);
  CHECK_THROWS_AS(vramfit::parse_chat_messages(R"({"role": "user"})"), Error);
}
