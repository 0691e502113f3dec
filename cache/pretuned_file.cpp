#include "cache/pretuned_file.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include "cache/json.h"
#include "codegen/error.h"

namespace vecattn::cache {
namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(Status::cache_error, what); }

// ---- writing ----

// The row's keys in file order, each with its value as JSON text. The reader takes its list of
// known keys from here, so the two cannot drift apart.
std::vector<std::pair<std::string, std::string>> json_fields(const TunedRow& r) {
  return {{"kernel_key", json_quote(r.kernel_key)},
          {"config", json_quote(r.config)},
          {"device_name", json_quote(r.device_name)},
          {"arch", json_quote(r.arch)},
          {"median_ms", fmt::format("{}", r.median_ms)},
          {"default_ms", fmt::format("{}", r.default_ms)},
          {"density", fmt::format("{}", r.density)},
          {"seq_len", fmt::format("{}", r.seq_len)},
          {"driver_version", fmt::format("{}", r.driver_version)},
          {"nvrtc_version", json_quote(r.nvrtc_version)},
          {"library_version", json_quote(r.library_version)},
          {"created", json_quote(r.created)}};
}

std::string row_line(const TunedRow& r) {
  std::string line = "{";
  for (const auto& [key, value] : json_fields(r)) {
    if (line.size() > 1) line += ", ";
    line += fmt::format("\"{}\": {}", key, value);
  }
  return line + "}";
}

bool by_key_then_device(const TunedRow& a, const TunedRow& b) {
  return std::tie(a.kernel_key, a.device_name) < std::tie(b.kernel_key, b.device_name);
}

// ---- reading ----

// A string or a number as it stands in the file, kept as text until its key says its type.
struct Scalar {
  bool is_string = false;
  std::string text;
  int line = 0;
};

// A reader for exactly the shape in pretuned_file.h; anything else is an error at its line.
class Reader {
 public:
  Reader(std::string_view text, std::string origin) : text_(text), origin_(std::move(origin)) {
    for (const auto& field : json_fields(TunedRow{})) row_keys_.push_back(field.first);
  }

  std::vector<TunedRow> file() {
    bool have_format = false, have_version = false, have_configs = false;
    std::vector<TunedRow> rows;
    expect('{', "the file to start with '{'");
    do {
      const int line = next_line();
      const std::string key = string();
      expect(':', "':' after the key");
      if (key == "format" && !have_format) {
        have_format = true;
        format_field();
      } else if (key == "version" && !have_version) {
        have_version = true;
        version_field();
      } else if (key == "configs" && !have_configs) {
        have_configs = true;
        rows = configs();
      } else if (key == "format" || key == "version" || key == "configs") {
        fail_at(line, fmt::format("key '{}' appears twice", key));
      } else {
        fail_at(line, fmt::format("unknown key '{}'; the file holds \"format\", \"version\" and \"configs\"", key));
      }
    } while (accept(','));
    expect('}', "',' or '}' after a value");
    skip_space();
    if (pos_ < text_.size()) fail_at(line_, "text after the closing '}'");
    if (!have_format) fail_at(line_, "missing key \"format\"");
    if (!have_version) fail_at(line_, "missing key \"version\"");
    if (!have_configs) fail_at(line_, "missing key \"configs\"");
    return rows;
  }

 private:
  [[noreturn]] void fail_at(int line, const std::string& what) const {
    fail(fmt::format("pretuned file {}:{}: {}", origin_, line, what));
  }

  void skip_space() {
    for (; pos_ < text_.size(); ++pos_) {
      const char c = text_[pos_];
      if (c == '\n') ++line_;
      else if (c != ' ' && c != '\t' && c != '\r') break;
    }
  }

  // The line of the next token: where an error about it points.
  int next_line() {
    skip_space();
    return line_;
  }

  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c, const char* wanted) {
    if (accept(c)) return;
    if (pos_ >= text_.size()) fail_at(line_, fmt::format("the file ends early (truncated?); expected {}", wanted));
    fail_at(line_, fmt::format("unexpected '{}'; expected {}", text_[pos_], wanted));
  }

  std::string string() {
    expect('"', "a string");
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail_at(line_, "the file ends inside a string (truncated?)");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail_at(line_, "a string is not closed on its line");
      if (c == '\\') {
        const char e = pos_ < text_.size() ? text_[pos_++] : '\0';
        if (e != '"' && e != '\\' && e != '/')
          fail_at(line_, "unsupported escape in a string: only \\\", \\\\ and \\/ are read");
        out += e;
      } else {
        out += c;
      }
    }
  }

  // A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  std::string number() {
    const size_t start = pos_;
    bool ok = false;
    pos_ = scan_json_number(text_, pos_, &ok);
    if (!ok) fail_at(line_, fmt::format("malformed number '{}'", text_.substr(start, pos_ - start + 1)));
    return std::string(text_.substr(start, pos_ - start));
  }

  Scalar scalar() {
    Scalar s;
    s.line = next_line();
    if (pos_ >= text_.size()) fail_at(line_, "the file ends early (truncated?); expected a value");
    const char c = text_[pos_];
    if (c == '"') {
      s.is_string = true;
      s.text = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      s.text = number();
    } else {
      fail_at(line_, fmt::format("unexpected '{}'; expected a string or a number", c));
    }
    return s;
  }

  void format_field() {
    const Scalar s = scalar();
    if (!s.is_string || s.text != kPretunedFormat)
      fail_at(s.line, fmt::format("\"format\" is '{}', not \"{}\": this is not a vecattn pretuned file", s.text,
                                  kPretunedFormat));
  }

  void version_field() {
    const Scalar s = scalar();
    const int64_t v = integer(s, "version", 0, std::numeric_limits<int>::max());
    if (v != kPretunedVersion)
      fail_at(s.line, fmt::format("version {} is not the one this build reads ({})", v, kPretunedVersion));
  }

  std::vector<TunedRow> configs() {
    std::vector<TunedRow> rows;
    std::map<std::pair<std::string, std::string>, int> seen;  // (kernel_key, device_name) -> line
    expect('[', "'[' to open the configs");
    if (accept(']')) return rows;
    do {
      const int line = next_line();
      rows.push_back(row());
      auto [it, fresh] = seen.emplace(std::pair{rows.back().kernel_key, rows.back().device_name}, line);
      if (!fresh)
        fail_at(line, fmt::format("a second row for {} on '{}' (the first is at line {})", rows.back().kernel_key,
                                  rows.back().device_name, it->second));
    } while (accept(','));
    expect(']', "',' or ']' after a row");
    return rows;
  }

  TunedRow row() {
    const int line = next_line();
    std::map<std::string, Scalar> values;
    expect('{', "'{' to open a row");
    do {
      const int key_line = next_line();
      const std::string key = string();
      if (std::find(row_keys_.begin(), row_keys_.end(), key) == row_keys_.end())
        fail_at(key_line, fmt::format("unknown key '{}' in a row", key));
      expect(':', "':' after the key");
      if (!values.emplace(key, scalar()).second) fail_at(key_line, fmt::format("key '{}' appears twice in a row", key));
    } while (accept(','));
    expect('}', "',' or '}' after a value");
    for (const auto& key : row_keys_)
      if (!values.count(key)) fail_at(line, fmt::format("the row misses key '{}'", key));
    TunedRow r = build(values);
    if (std::string why = check_tuned_row(r); !why.empty()) fail_at(line, why);
    return r;
  }

  TunedRow build(const std::map<std::string, Scalar>& v) {
    TunedRow r;
    r.kernel_key = text(v.at("kernel_key"), "kernel_key");
    r.config = text(v.at("config"), "config");
    r.device_name = text(v.at("device_name"), "device_name");
    r.arch = text(v.at("arch"), "arch");
    r.median_ms = real(v.at("median_ms"), "median_ms");
    r.default_ms = real(v.at("default_ms"), "default_ms");
    r.density = real(v.at("density"), "density");
    r.seq_len = integer(v.at("seq_len"), "seq_len", 0, std::numeric_limits<int64_t>::max());
    r.driver_version = int(integer(v.at("driver_version"), "driver_version", 0, std::numeric_limits<int>::max()));
    r.nvrtc_version = text(v.at("nvrtc_version"), "nvrtc_version");
    r.library_version = text(v.at("library_version"), "library_version");
    r.created = text(v.at("created"), "created");
    return r;
  }

  std::string text(const Scalar& s, const char* key) const {
    if (!s.is_string) fail_at(s.line, fmt::format("'{}' must be a string, not {}", key, s.text));
    return s.text;
  }

  // from_chars, unlike strtod, ignores the locale: a German locale must not misread "0.5".
  template <class T>
  bool parse_number(const Scalar& s, T* v) const {
    if (s.is_string) return false;
    const char* end = s.text.data() + s.text.size();
    const auto r = std::from_chars(s.text.data(), end, *v);
    return r.ec == std::errc() && r.ptr == end;
  }

  double real(const Scalar& s, const char* key) const {
    double v = 0;
    if (!parse_number(s, &v) || !std::isfinite(v))
      fail_at(s.line, fmt::format("'{}' must be a finite number, not {}", key, shown(s)));
    return v;
  }

  int64_t integer(const Scalar& s, const char* key, int64_t lo, int64_t hi) const {
    int64_t v = 0;
    if (!parse_number(s, &v) || v < lo || v > hi)
      fail_at(s.line, fmt::format("'{}' must be a whole number from {} to {}, not {}", key, lo, hi, shown(s)));
    return v;
  }

  static std::string shown(const Scalar& s) { return s.is_string ? json_quote(s.text) : s.text; }

  std::string_view text_;
  std::string origin_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<std::string> row_keys_;
};

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err) {
  fail(fmt::format("pretuned file {}: {}: {}", path, what, std::strerror(err)));
}

void write_all(int fd, const std::string& text, const std::string& tmp) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_io("cannot be written", tmp, errno);
    done += size_t(n);
  }
}

}  // namespace

std::string export_tuned(const std::vector<TunedRow>& rows) {
  std::vector<TunedRow> sorted = rows;
  std::sort(sorted.begin(), sorted.end(), by_key_then_device);
  for (size_t i = 0; i < sorted.size(); ++i) {
    const TunedRow& r = sorted[i];
    if (std::string why = check_tuned_row(r); !why.empty())
      fail(fmt::format("cannot export the tuned config of {} on '{}': {}", r.kernel_key, r.device_name, why));
    if (i > 0 && !by_key_then_device(sorted[i - 1], r))
      fail(fmt::format("cannot export two tuned configs of {} on '{}'", r.kernel_key, r.device_name));
  }
  std::string out = fmt::format("{{\n  \"format\": {},\n  \"version\": {},\n  \"configs\": [", json_quote(kPretunedFormat),
                                kPretunedVersion);
  for (size_t i = 0; i < sorted.size(); ++i) out += (i ? ",\n    " : "\n    ") + row_line(sorted[i]);
  out += sorted.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

std::vector<TunedRow> import_tuned(const std::string& text, const std::string& origin) {
  return Reader(text, origin).file();
}

std::vector<TunedRow> read_pretuned_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail_io("cannot be read", path, errno);
  std::stringstream text;
  text << f.rdbuf();
  if (f.bad()) fail_io("cannot be read", path, errno);
  return import_tuned(text.str(), path);
}

void write_pretuned_file(const std::string& path, const std::vector<TunedRow>& rows) {
  const std::string text = export_tuned(rows);  // before touching the disk: a bad row changes nothing
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);

  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail_io("cannot create a temporary file beside it", path, errno);
  try {
    write_all(fd, text, tmp);
    // mkstemp makes the file private; a shipped file is read by everyone.
    if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) fail_io("cannot be written", tmp, errno);
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) fail_io("cannot be written", tmp, errno);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail_io("cannot replace it", path, errno);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace vecattn::cache
