#pragma once
// A strict reader for the small JSON documents vecattn reads (threshold files, safetensors
// headers): objects (keys unique, in file order), arrays, strings, numbers (kept as text until
// their field says what they are), true/false/null. Errors say where: "<origin>: line N: what".
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vecattn::cache {

struct JsonValue {
  enum Kind { object, array, string, number, boolean, null } kind = null;
  std::vector<std::pair<std::string, std::unique_ptr<JsonValue>>> fields;  // object
  std::vector<std::unique_ptr<JsonValue>> items;                           // array
  std::string text;  // string: its value; number: as written; boolean: "true"/"false"
  int line = 1;

  const JsonValue* get(std::string_view key) const;
  // A number written as a non-negative integer, or nullopt-like false.
  bool unsigned_integer(uint64_t* out) const;
  bool real(double* out) const;
};

// Throws std::runtime_error("<origin>: line N: <what>") for anything malformed.
std::unique_ptr<JsonValue> parse_json(std::string_view text, const std::string& origin);

// Scans the JSON number -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? starting at text[pos]:
// returns where the scan stopped (the end of the number when *ok), for both JSON readers.
size_t scan_json_number(std::string_view text, size_t pos, bool* ok);

// A JSON string literal of s, escaping '"' and '\' (the files vecattn writes hold no control
// characters; the readers take these escapes back).
std::string json_quote(const std::string& s);

}  // namespace vecattn::cache
