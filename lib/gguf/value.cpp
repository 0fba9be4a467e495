// Metadata values: parsing (with validation) and the typed accessors of gguf::Value.
#include <limits>

#include "gguf/cursor.hpp"

namespace vramfit::gguf {
namespace {

// Nested arrays are legal GGUF, but nobody nests deeply; the limit keeps a hostile file from
// exhausting the stack through recursion.
constexpr int kMaxArrayDepth = 8;

template <class T>
T load(std::span<const std::byte> raw) {
  T value;
  std::memcpy(&value, raw.data(), sizeof(T));
  return value;
}

std::string_view describe(std::string_view what) { return what.empty() ? "metadata value" : what; }

[[noreturn]] void wrong_type(std::string_view what, std::string_view expected, ValueType found) {
  detail::fail(ErrorCode::format, "{}: expected {}, found {}", describe(what), expected,
               value_type_name(found));
}

}  // namespace

std::string_view value_type_name(ValueType type) noexcept {
  switch (type) {
    case ValueType::u8: return "u8";
    case ValueType::i8: return "i8";
    case ValueType::u16: return "u16";
    case ValueType::i16: return "i16";
    case ValueType::u32: return "u32";
    case ValueType::i32: return "i32";
    case ValueType::f32: return "f32";
    case ValueType::boolean: return "bool";
    case ValueType::string: return "string";
    case ValueType::array: return "array";
    case ValueType::u64: return "u64";
    case ValueType::i64: return "i64";
    case ValueType::f64: return "f64";
  }
  return "unknown";
}

uint64_t scalar_size(ValueType type) noexcept {
  switch (type) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    case ValueType::string: case ValueType::array: return 0;
  }
  return 0;
}

bool is_known_value_type(uint32_t id) noexcept { return id <= static_cast<uint32_t>(ValueType::f64); }

Value parse_value(Cursor &cursor, ValueType type, std::string_view what, int depth) {
  if (type == ValueType::string) {
    auto s = cursor.read_string(what);
    return Value(type, std::as_bytes(std::span(s.data(), s.size())));
  }
  if (type != ValueType::array) return Value(type, cursor.take(scalar_size(type), what));

  uint64_t at = cursor.pos();
  if (depth >= kMaxArrayDepth)
    cursor.fail_at(at, "'{}': arrays nested deeper than {} levels", what, kMaxArrayDepth);
  auto element_id = cursor.read<uint32_t>(what);
  if (!is_known_value_type(element_id))
    cursor.fail_at(at, "'{}': unknown array element type {}", what, element_id);
  auto element_type = static_cast<ValueType>(element_id);
  auto count = cursor.read<uint64_t>(what);

  // Smallest encoding of one element: its size, a string's length field, or a nested array's
  // type + count. Checking count against it before looping bounds the work by the file size.
  uint64_t min_size = scalar_size(element_type);
  if (element_type == ValueType::string) min_size = 8;
  if (element_type == ValueType::array) min_size = 12;
  if (count > cursor.remaining() / min_size)
    cursor.fail_at(at, "'{}': array of {} {} elements cannot fit in the {} bytes left", what, count,
                   value_type_name(element_type), cursor.remaining());

  if (scalar_size(element_type) != 0)
    return Value(type, cursor.take(count * min_size, what), element_type, count);
  uint64_t start = cursor.pos();
  for (uint64_t i = 0; i < count; ++i) parse_value(cursor, element_type, what, depth + 1);
  return Value(type, cursor.bytes().subspan(start, cursor.pos() - start), element_type, count);
}

bool Value::is_integer() const noexcept {
  switch (type_) {
    case ValueType::u8: case ValueType::i8: case ValueType::u16: case ValueType::i16:
    case ValueType::u32: case ValueType::i32: case ValueType::u64: case ValueType::i64:
      return true;
    default:
      return false;
  }
}

bool Value::is_float() const noexcept { return type_ == ValueType::f32 || type_ == ValueType::f64; }

int64_t Value::as_int(std::string_view what) const {
  switch (type_) {
    case ValueType::u8: return load<uint8_t>(raw_);
    case ValueType::i8: return load<int8_t>(raw_);
    case ValueType::u16: return load<uint16_t>(raw_);
    case ValueType::i16: return load<int16_t>(raw_);
    case ValueType::u32: return load<uint32_t>(raw_);
    case ValueType::i32: return load<int32_t>(raw_);
    case ValueType::i64: return load<int64_t>(raw_);
    case ValueType::u64: {
      auto v = load<uint64_t>(raw_);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        detail::fail(ErrorCode::format, "{}: value {} does not fit a signed 64-bit integer",
                     describe(what), v);
      return static_cast<int64_t>(v);
    }
    default:
      wrong_type(what, "an integer", type_);
  }
}

uint64_t Value::as_uint(std::string_view what) const {
  if (type_ == ValueType::u64) return load<uint64_t>(raw_);
  int64_t v = as_int(what);
  if (v < 0) detail::fail(ErrorCode::format, "{}: value {} is negative", describe(what), v);
  return static_cast<uint64_t>(v);
}

double Value::as_float(std::string_view what) const {
  if (type_ == ValueType::f32) return load<float>(raw_);
  if (type_ == ValueType::f64) return load<double>(raw_);
  if (type_ == ValueType::u64) return static_cast<double>(load<uint64_t>(raw_));
  if (is_integer()) return static_cast<double>(as_int(what));
  wrong_type(what, "a number", type_);
}

bool Value::as_bool(std::string_view what) const {
  if (type_ != ValueType::boolean) wrong_type(what, "a bool", type_);
  return load<uint8_t>(raw_) != 0;
}

std::string_view Value::as_string(std::string_view what) const {
  if (type_ != ValueType::string) wrong_type(what, "a string", type_);
  return {reinterpret_cast<const char *>(raw_.data()), raw_.size()};
}

Value Value::element(uint64_t i) const {
  if (type_ != ValueType::array) wrong_type({}, "an array", type_);
  uint64_t size = scalar_size(array_type_);
  if (size == 0)
    detail::fail(ErrorCode::invalid_argument,
                 "Value::element: arrays of {} have no O(1) element access; use for_each_element",
                 value_type_name(array_type_));
  if (i >= count_)
    detail::fail(ErrorCode::invalid_argument, "Value::element: index {} out of range (size {})", i,
                 count_);
  return Value(array_type_, raw_.subspan(i * size, size));
}

void Value::for_each_element(
    const std::function<void(uint64_t index, const Value &element)> &fn) const {
  if (type_ != ValueType::array) wrong_type({}, "an array", type_);
  // raw_ was validated when the file was opened, so re-parsing it cannot fail.
  Cursor cursor(raw_, "<array>");
  for (uint64_t i = 0; i < count_; ++i) fn(i, parse_value(cursor, array_type_, "array element", 1));
}

}  // namespace vramfit::gguf
