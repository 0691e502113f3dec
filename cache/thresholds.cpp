// The thresholds rows of Database (schema in database.cpp), and their JSON file.
#include "cache/thresholds.h"

#include <fmt/format.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <map>

#include "cache/database.h"
#include "cache/json.h"
#include "cache/sqlite.h"
#include "codegen/error.h"

namespace vecattn::cache {
namespace {

constexpr const char* kFormat = "vecattn-thresholds";
constexpr int kFileVersion = 1;

}  // namespace

std::string check_threshold_row(const ThresholdRow& r) {
  if (r.model.empty()) return "model is empty";
  for (const std::string* s : {&r.model, &r.options, &r.created})
    for (unsigned char c : *s)
      if (c < 0x20 || c == 0x7f) return "a text field holds a control character";
  if (r.layer < 0 || r.head < 0) return fmt::format("layer and head must be >= 0, not {} and {}", r.layer, r.head);
  if (!(r.threshold > 0 && r.threshold <= 1)) return fmt::format("threshold must be in (0, 1], not {}", r.threshold);
  if (!(r.recall >= 0 && r.recall <= 1)) return fmt::format("recall must be in [0, 1], not {}", r.recall);
  if (!(r.sparsity >= 0 && r.sparsity <= 1)) return fmt::format("sparsity must be in [0, 1], not {}", r.sparsity);
  return {};
}

void Database::put_thresholds(const std::vector<ThresholdRow>& rows) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (read_only() || !has_thresholds_table()) fail("is read-only (or at an old schema): thresholds cannot be stored");
  for (const auto& r : rows)
    if (auto why = check_threshold_row(r); !why.empty())
      fail(fmt::format("threshold row {} layer {} head {}: {}", r.model, r.layer, r.head, why));
  exec(db_, "BEGIN IMMEDIATE");
  try {
    const std::string now = utc_timestamp();
    for (const auto& r : rows) {
      Statement put(db_, "INSERT OR REPLACE INTO thresholds (model, layer, head, threshold, recall, sparsity, options, "
                         "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      put.bind(1, r.model).bind(2, int64_t(r.layer)).bind(3, int64_t(r.head)).bind(4, r.threshold).bind(5, r.recall);
      put.bind(6, r.sparsity).bind(7, r.options).bind(8, r.created.empty() ? now : r.created);
      put.run();
    }
    exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<ThresholdRow> Database::get_thresholds(const std::string& model, int layer) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ThresholdRow> rows;
  if (!has_thresholds_table()) return rows;
  Statement st(db_, "SELECT model, layer, head, threshold, recall, sparsity, options, created FROM thresholds "
                    "WHERE model = ? AND (? < 0 OR layer = ?) ORDER BY layer, head");
  st.bind(1, model).bind(2, int64_t(layer)).bind(3, int64_t(layer));
  while (st.step())
    rows.push_back(ThresholdRow{st.text(0), int(st.integer(1)), int(st.integer(2)), st.real(3), st.real(4), st.real(5),
                                st.text(6), st.text(7)});
  return rows;
}

std::vector<std::string> Database::threshold_models() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  if (!has_thresholds_table()) return out;
  Statement st(db_, "SELECT DISTINCT model FROM thresholds ORDER BY model");
  while (st.step()) out.push_back(st.text(0));
  return out;
}

void write_thresholds_file(const std::string& path, const std::vector<ThresholdRow>& rows) {
  std::string text = fmt::format("{{\n  \"format\": \"{}\",\n  \"version\": {},\n  \"rows\": [\n", kFormat, kFileVersion);
  for (size_t i = 0; i < rows.size(); ++i) {
    const ThresholdRow& r = rows[i];
    text += fmt::format("    {{\"model\": {}, \"layer\": {}, \"head\": {}, \"threshold\": {:.9g}, \"recall\": {:.9g}, "
                        "\"sparsity\": {:.9g}, \"options\": {}, \"created\": {}}}{}\n",
                        json_quote(r.model), r.layer, r.head, r.threshold, r.recall, r.sparsity, json_quote(r.options),
                        json_quote(r.created), i + 1 < rows.size() ? "," : "");
  }
  text += "  ]\n}\n";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!(f << text)) throw Error(Status::cache_error, fmt::format("thresholds file {}: cannot be written", path));
}

std::vector<ThresholdRow> read_thresholds_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(Status::invalid_argument, fmt::format("thresholds file {}: cannot be opened", path));
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](int line, const std::string& what) -> Error {
    return Error(Status::invalid_argument, fmt::format("thresholds file {}: line {}: {}", path, line, what));
  };
  std::unique_ptr<JsonValue> doc;
  try {
    doc = parse_json(text, "thresholds file " + path);
  } catch (const std::runtime_error& e) {
    throw Error(Status::invalid_argument, e.what());
  }
  if (doc->kind != JsonValue::object) throw bad(doc->line, "the file is not a JSON object");
  const JsonValue* format = doc->get("format");
  const JsonValue* version = doc->get("version");
  const JsonValue* list = doc->get("rows");
  if (!format || format->kind != JsonValue::string || format->text != kFormat)
    throw bad(doc->line, fmt::format("\"format\" must be \"{}\"", kFormat));
  uint64_t v = 0;
  if (!version || !version->unsigned_integer(&v) || v != kFileVersion)
    throw bad(doc->line, fmt::format("\"version\" must be {}", kFileVersion));
  if (!list || list->kind != JsonValue::array) throw bad(doc->line, "\"rows\" must be an array");
  std::vector<ThresholdRow> rows;
  for (const auto& item : list->items) {
    if (item->kind != JsonValue::object) throw bad(item->line, "a row is not an object");
    ThresholdRow r;
    for (const auto& [key, value] : item->fields) {
      uint64_t n = 0;
      double x = 0;
      if (key == "model" || key == "options" || key == "created") {
        if (value->kind != JsonValue::string) throw bad(value->line, fmt::format("\"{}\" must be a string", key));
        (key == "model" ? r.model : key == "options" ? r.options : r.created) = value->text;
      } else if (key == "layer" || key == "head") {
        if (!value->unsigned_integer(&n) || n > 1000000) throw bad(value->line, fmt::format("\"{}\" must be an integer >= 0", key));
        (key == "layer" ? r.layer : r.head) = int(n);
      } else if (key == "threshold" || key == "recall" || key == "sparsity") {
        if (!value->real(&x)) throw bad(value->line, fmt::format("\"{}\" must be a number", key));
        (key == "threshold" ? r.threshold : key == "recall" ? r.recall : r.sparsity) = x;
      } else {
        throw bad(value->line, fmt::format("unknown key \"{}\"", key));
      }
    }
    for (const char* key : {"model", "layer", "head", "threshold"})
      if (!item->get(key)) throw bad(item->line, fmt::format("a row has no \"{}\"", key));
    if (auto why = check_threshold_row(r); !why.empty()) throw bad(item->line, why);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<float> layer_thresholds(const std::vector<ThresholdRow>& rows, const std::string& model, int layer) {
  std::map<int, double> by_head;
  bool have_model = false;
  for (const auto& r : rows) {
    have_model |= r.model == model;
    if (r.model == model && r.layer == layer) by_head[r.head] = r.threshold;
  }
  if (!have_model) throw Error(Status::invalid_argument, fmt::format("no thresholds for model '{}'", model));
  if (by_head.empty()) throw Error(Status::invalid_argument, fmt::format("model '{}' has no thresholds for layer {}", model, layer));
  const int heads = by_head.rbegin()->first + 1;
  std::vector<float> out(static_cast<size_t>(heads));
  for (int h = 0; h < heads; ++h) {
    auto it = by_head.find(h);
    if (it == by_head.end())
      throw Error(Status::invalid_argument, fmt::format("model '{}' layer {} has no threshold for head {}", model, layer, h));
    out[size_t(h)] = float(it->second);
  }
  return out;
}

}  // namespace vecattn::cache
