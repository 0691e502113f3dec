#include "cache/json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace vecattn::cache {
namespace {

class Parser {
 public:
  Parser(std::string_view text, const std::string& origin) : s_(text), origin_(origin) {}

  std::unique_ptr<JsonValue> document() {
    auto v = value(0);
    space();
    if (i_ != s_.size()) fail("text after the document");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(origin_ + ": line " + std::to_string(line_) + ": " + what);
  }
  void space() {
    for (; i_ < s_.size(); ++i_) {
      const char c = s_[i_];
      if (c == '\n') ++line_;
      else if (c != ' ' && c != '\t' && c != '\r') break;
    }
  }
  bool accept(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  void expect(char c, const char* after) {
    if (accept(c)) return;
    if (i_ >= s_.size()) fail(std::string("the text ends early (truncated?); expected '") + c + "' " + after);
    fail(std::string("unexpected '") + s_[i_] + "'; expected '" + c + "' " + after);
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  std::unique_ptr<JsonValue> value(int depth) {
    if (depth > 16) fail("nested too deeply");
    space();
    if (i_ >= s_.size()) fail("the text ends early (truncated?); expected a value");
    auto v = std::make_unique<JsonValue>();
    v->line = line_;
    const char c = s_[i_];
    if (c == '{') {
      v->kind = JsonValue::object;
      ++i_;
      if (!accept('}')) {
        do {
          space();
          std::string key = string_literal();
          if (v->get(key)) fail("key \"" + key + "\" appears twice");
          expect(':', "after a key");
          v->fields.emplace_back(std::move(key), value(depth + 1));
        } while (accept(','));
        expect('}', "or ',' after a value");
      }
    } else if (c == '[') {
      v->kind = JsonValue::array;
      ++i_;
      if (!accept(']')) {
        do v->items.push_back(value(depth + 1));
        while (accept(','));
        expect(']', "or ',' after an item");
      }
    } else if (c == '"') {
      v->kind = JsonValue::string;
      v->text = string_literal();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v->kind = JsonValue::number;
      v->text = number();
    } else if (word("true") || word("false")) {
      v->kind = JsonValue::boolean;
      v->text = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u' ? "true" : "false";
    } else if (word("null")) {
      v->kind = JsonValue::null;
    } else {
      fail(std::string("unexpected '") + c + "'");
    }
    return v;
  }

  std::string number() {
    const size_t start = i_;
    bool ok = false;
    i_ = scan_json_number(s_, i_, &ok);
    if (!ok) fail("malformed number '" + std::string(s_.substr(start, i_ - start + 1)) + "'");
    return std::string(s_.substr(start, i_ - start));
  }

  std::string string_literal() {
    if (i_ >= s_.size()) fail("the text ends early (truncated?); expected a string");
    if (s_[i_] != '"') fail("expected a string");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("a string is not closed (truncated?)");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("a control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("a string is not closed (truncated?)");
      switch (const char e = s_[i_++]) {
        case '"': case '\\': case '/': out += e; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        default: fail(std::string("unsupported escape \\") + e);
      }
    }
  }

  std::string_view s_;
  const std::string& origin_;
  size_t i_ = 0;
  int line_ = 1;
};

}  // namespace

const JsonValue* JsonValue::get(std::string_view key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return v.get();
  return nullptr;
}

bool JsonValue::unsigned_integer(uint64_t* out) const {
  if (kind != number || text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  *out = v;
  return true;
}

bool JsonValue::real(double* out) const {
  if (kind != number) return false;
  errno = 0;
  const double v = std::strtod(text.c_str(), nullptr);
  if (errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

std::unique_ptr<JsonValue> parse_json(std::string_view text, const std::string& origin) {
  return Parser(text, origin).document();
}

size_t scan_json_number(std::string_view text, size_t pos, bool* ok) {
  auto digits = [&] {
    const size_t from = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    return pos > from;
  };
  auto take = [&](char c) { return pos < text.size() && text[pos] == c && (++pos, true); };
  take('-');
  const size_t int_start = pos;
  *ok = digits() && !(text[int_start] == '0' && pos - int_start > 1);
  if (*ok && take('.')) *ok = digits();
  if (*ok && (take('e') || take('E'))) {
    if (!take('+')) take('-');
    *ok = digits();
  }
  return pos;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace vecattn::cache
