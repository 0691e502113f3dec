#include "cache/sqlite.h"

#include <fmt/format.h>

#include "codegen/error.h"

namespace vecattn::cache {

void check(sqlite3* db, int rc, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  throw Error(Status::cache_error, fmt::format("SQLite: {} failed: {} ({})", what, db ? sqlite3_errmsg(db) : "",
                                               sqlite3_errstr(rc)));
}

void exec(sqlite3* db, std::string_view sql) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    throw Error(Status::cache_error, fmt::format("SQLite: '{}' failed: {}", sql.substr(0, 60), m));
  }
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  check(db, sqlite3_prepare_v2(db, sql.data(), int(sql.size()), &stmt_, nullptr), "prepare");
}
Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int i, std::string_view t) {
  check(db_, sqlite3_bind_text(stmt_, i, t.data(), int(t.size()), SQLITE_TRANSIENT), "bind");
  return *this;
}
Statement& Statement::bind_blob(int i, std::string_view b) {
  check(db_, sqlite3_bind_blob64(stmt_, i, b.data(), b.size(), SQLITE_TRANSIENT), "bind");
  return *this;
}
Statement& Statement::bind(int i, int64_t v) {
  check(db_, sqlite3_bind_int64(stmt_, i, v), "bind");
  return *this;
}
Statement& Statement::bind(int i, double v) {
  check(db_, sqlite3_bind_double(stmt_, i, v), "bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  check(db_, rc, "step");
  return rc == SQLITE_ROW;
}

std::string Statement::text(int c) const {
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
  return p ? std::string(p, size_t(sqlite3_column_bytes(stmt_, c))) : std::string();
}
std::string Statement::blob(int c) const {
  auto p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
  return p ? std::string(p, size_t(sqlite3_column_bytes(stmt_, c))) : std::string();
}
int64_t Statement::integer(int c) const { return sqlite3_column_int64(stmt_, c); }
double Statement::real(int c) const { return sqlite3_column_double(stmt_, c); }
bool Statement::is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }

}  // namespace vecattn::cache
