#pragma once
// A thin RAII layer over SQLite: bound parameters only, every result code checked.
#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace vecattn::cache {

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);

  // true while a row is available; false when done. Throws Error(cache_error) on failure.
  bool step();
  void run() { step(); }

  std::string text(int col) const;
  std::string blob(int col) const;
  int64_t integer(int col) const;
  double real(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Runs statements without parameters (schema, pragmas).
void exec(sqlite3* db, std::string_view sql);

// Throws Error(cache_error) with SQLite's message when rc is not one of the ok codes.
void check(sqlite3* db, int rc, std::string_view what);

}  // namespace vecattn::cache
