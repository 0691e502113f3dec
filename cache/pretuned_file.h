#pragma once
// Tuned rows as a text file reviewed in pull requests and shipped per arch
// (cache/pretuned/sm_90a.json). The file is JSON of exactly this shape, one row per line:
//
//   {
//     "format": "vecattn-pretuned",
//     "version": 1,
//     "configs": [
//       {"kernel_key": "select/pq64-bk16-gk16-d128-bf16-sm_90a-causal", "config": "bq64-w4-s2", ...},
//       ...
//     ]
//   }
//
// Each row holds every TunedRow field, keys in the struct's order. Output is deterministic: rows
// sorted by kernel_key then device_name, numbers in their shortest exact form, so re-exporting
// what was imported gives the same bytes and a diff shows only what a new tuning run changed.
// The reader takes this shape only (strings with \" and \\ escapes, numbers, the fixed keys) and
// checks every row as the database does (check_tuned_row), so a typo fails at import, with its line.
#include <string>
#include <vector>

#include "cache/tuned.h"

namespace vecattn::cache {

constexpr const char* kPretunedFormat = "vecattn-pretuned";
constexpr int kPretunedVersion = 1;

// The text of a file holding rows. Throws Error(cache_error) for a row check_tuned_row rejects,
// or two rows of the same (kernel_key, device_name).
std::string export_tuned(const std::vector<TunedRow>& rows);

// The rows of a file's text, in file order. Throws Error(cache_error) "<origin>:<line>: <what>"
// for anything not of the shape above, an unknown or missing key, a wrong format or version, a
// row check_tuned_row rejects, or a repeated (kernel_key, device_name).
std::vector<TunedRow> import_tuned(const std::string& text, const std::string& origin);

// import_tuned of the file's text; also throws when the file cannot be read.
std::vector<TunedRow> read_pretuned_file(const std::string& path);

// Writes export_tuned(rows) to a temporary file in the same folder, then renames it over path:
// a reader sees the old file or the new one, never a half-written one.
void write_pretuned_file(const std::string& path, const std::vector<TunedRow>& rows);

}  // namespace vecattn::cache
