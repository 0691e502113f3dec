// The tuned_configs rows of Database (its schema and migration live in database.cpp).
#include "cache/tuned.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <ctime>
#include <initializer_list>
#include <string_view>
#include <tuple>
#include <utility>

#include "cache/database.h"
#include "cache/sqlite.h"
#include "codegen/error.h"
#include "codegen/key.h"

namespace vecattn::cache {
namespace {

// The column order of every SELECT below, read back by read_row.
constexpr const char* kColumns =
    "kernel_key, config, device_name, arch, median_ms, default_ms, density, seq_len, driver_version, nvrtc_version, "
    "library_version, created";

TunedRow read_row(const Statement& st) {
  TunedRow r;
  r.kernel_key = st.text(0);
  r.config = st.text(1);
  r.device_name = st.text(2);
  r.arch = st.text(3);
  r.median_ms = st.real(4);
  r.default_ms = st.real(5);
  r.density = st.real(6);
  r.seq_len = st.integer(7);
  r.driver_version = int(st.integer(8));
  r.nvrtc_version = st.text(9);
  r.library_version = st.text(10);
  r.created = st.text(11);
  return r;
}

// The exact shape of utc_timestamp(): string order is then time order, which "newest" relies on.
bool is_timestamp(const std::string& s) {
  constexpr std::string_view shape = "0000-00-00T00:00:00Z";
  if (s.size() != shape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool ok = shape[i] == '0' ? std::isdigit(static_cast<unsigned char>(s[i])) != 0 : s[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

// Control characters would break the one-row-per-line file and a reviewer's diff.
bool has_control_char(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

std::string check_text_fields(const TunedRow& r) {
  const std::initializer_list<std::pair<const char*, const std::string*>> fields = {
      {"kernel_key", &r.kernel_key},       {"config", &r.config},
      {"device_name", &r.device_name},     {"arch", &r.arch},
      {"nvrtc_version", &r.nvrtc_version}, {"library_version", &r.library_version},
      {"created", &r.created}};
  for (const auto& [name, value] : fields)
    if (has_control_char(*value)) return fmt::format("{} holds a control character", name);
  return {};
}

std::string check_numbers(const TunedRow& r) {
  for (const auto& [name, v] : {std::pair{"median_ms", r.median_ms}, std::pair{"default_ms", r.default_ms}})
    if (!std::isfinite(v) || v < 0) return fmt::format("{} must be a finite time >= 0, not {}", name, v);
  if (!(r.density > 0 && r.density <= 1)) return fmt::format("density must be in (0, 1], not {}", r.density);
  if (r.seq_len < 0) return fmt::format("seq_len must be >= 0, not {}", r.seq_len);
  if (r.driver_version < 0) return fmt::format("driver_version must be >= 0, not {}", r.driver_version);
  return {};
}

}  // namespace

bool TunedRow::operator==(const TunedRow& o) const {
  return std::tie(kernel_key, config, device_name, arch, median_ms, default_ms, density, seq_len, driver_version,
                  nvrtc_version, library_version, created) ==
         std::tie(o.kernel_key, o.config, o.device_name, o.arch, o.median_ms, o.default_ms, o.density, o.seq_len,
                  o.driver_version, o.nvrtc_version, o.library_version, o.created);
}

std::string check_tuned_row(const TunedRow& r) {
  if (std::string why = check_text_fields(r); !why.empty()) return why;
  KernelKey key;
  try {
    key = KernelKey::parse(r.kernel_key);
    TileConfig::parse(key.kernel, r.config);
  } catch (const Error& e) {
    return e.what();
  }
  if (r.arch != key.arch) return fmt::format("arch '{}' is not the kernel key's arch '{}'", r.arch, key.arch);
  if (r.device_name.empty()) return "device_name is empty";
  if (std::string why = check_numbers(r); !why.empty()) return why;
  if (!r.created.empty() && !is_timestamp(r.created))
    return fmt::format("created '{}' is not a UTC time of the form 2025-01-31T12:00:00Z", r.created);
  return {};
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void Database::put_tuned(const TunedRow& row) {
  if (access_ == Access::read_only) fail("is read-only");
  if (std::string why = check_tuned_row(row); !why.empty())
    fail(fmt::format("cannot store the tuned config of {} on '{}': {}", row.kernel_key, row.device_name, why));
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_, fmt::format("INSERT OR REPLACE INTO tuned_configs ({}) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                kColumns));
  st.bind(1, row.kernel_key)
      .bind(2, row.config)
      .bind(3, row.device_name)
      .bind(4, row.arch)
      .bind(5, row.median_ms)
      .bind(6, row.default_ms)
      .bind(7, row.density)
      .bind(8, row.seq_len)
      .bind(9, int64_t(row.driver_version))
      .bind(10, row.nvrtc_version)
      .bind(11, row.library_version)
      .bind(12, row.created.empty() ? utc_timestamp() : row.created);
  st.run();
}

std::optional<TunedRow> Database::get_tuned(const std::string& kernel_key, const std::string& device_name) {
  if (!has_tuned_table()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_, fmt::format("SELECT {} FROM tuned_configs WHERE kernel_key = ?1 AND device_name = ?2", kColumns));
  st.bind(1, kernel_key).bind(2, device_name);
  if (!st.step()) return std::nullopt;
  return read_row(st);
}

std::optional<TunedRow> Database::get_tuned_for_arch(const std::string& kernel_key, const std::string& arch) {
  if (!has_tuned_table()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  // Within one second, the later write (larger rowid: a replace gets a new one) is the newer.
  Statement st(db_, fmt::format("SELECT {} FROM tuned_configs WHERE kernel_key = ?1 AND arch = ?2 "
                                "ORDER BY created DESC, rowid DESC LIMIT 1",
                                kColumns));
  st.bind(1, kernel_key).bind(2, arch);
  if (!st.step()) return std::nullopt;
  return read_row(st);
}

std::vector<TunedRow> Database::all_tuned(const std::string& arch) {
  std::vector<TunedRow> rows;
  if (!has_tuned_table()) return rows;
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_, fmt::format("SELECT {} FROM tuned_configs WHERE ?1 = '' OR arch = ?1 "
                                "ORDER BY kernel_key, device_name",
                                kColumns));
  st.bind(1, arch);
  while (st.step()) rows.push_back(read_row(st));
  return rows;
}

long long Database::count_tuned() {
  if (!has_tuned_table()) return 0;
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_, "SELECT COUNT(*) FROM tuned_configs");
  st.step();
  return st.integer(0);
}

}  // namespace vecattn::cache
