// Calibrated thresholds: the database rows, the JSON file, and one layer in prefill's form.
#include <catch2/catch.hpp>

#include <fstream>

#include "cache/database.h"
#include "cache/thresholds.h"
#include "codegen/error.h"
#include "temp_dir.h"

using namespace vecattn;
using cache::ThresholdRow;

namespace {

std::vector<ThresholdRow> model_rows(const std::string& model, int layers, int heads) {
  std::vector<ThresholdRow> rows;
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h)
      rows.push_back({model, l, h, 0.5 + 0.01 * (l * heads + h), 0.9 - 0.001 * h, 0.7 + 0.002 * l,
                      "pq64-bk16-gk16-causal rows=64 target=sparsity:0.75", "2026-11-24T00:00:00Z"});
  return rows;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST_CASE("thresholds: stored, replaced and read back per model and layer", "[cache][calibrate]") {
  test::TempDir dir;
  auto db = cache::Database::open(dir.file("c.sqlite"));
  const auto a = model_rows("wan2.1", 3, 4), b = model_rows("hunyuan", 2, 2);
  db->put_thresholds(a);
  db->put_thresholds(b);
  CHECK(db->threshold_models() == std::vector<std::string>{"hunyuan", "wan2.1"});
  const auto all = db->get_thresholds("wan2.1");
  REQUIRE(all.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(all[i].layer == a[i].layer);
    CHECK(all[i].head == a[i].head);
    CHECK(all[i].threshold == a[i].threshold);
    CHECK(all[i].recall == a[i].recall);
    CHECK(all[i].sparsity == a[i].sparsity);
    CHECK(all[i].options == a[i].options);
    CHECK(all[i].created == a[i].created);
  }
  auto again = a[5];
  again.threshold = 0.99;
  db->put_thresholds({again});
  CHECK(db->get_thresholds("wan2.1", 1).at(1).threshold == 0.99);
  CHECK(db->get_thresholds("wan2.1", 1).size() == 4);
  CHECK(db->get_thresholds("nobody").empty());
  auto bad = a[0];
  bad.threshold = 1.5;
  CHECK_THROWS_AS(db->put_thresholds({a[1], bad}), Error);
  CHECK(db->get_thresholds("wan2.1", 0).at(1).threshold == a[1].threshold);  // nothing of a failed batch lands
}

TEST_CASE("thresholds: the JSON file round-trips and gives a layer in prefill's form", "[cache][calibrate]") {
  test::TempDir dir;
  const auto rows = model_rows("qwen2-vl", 2, 3);
  cache::write_thresholds_file(dir.file("t.json"), rows);
  const auto back = cache::read_thresholds_file(dir.file("t.json"));
  REQUIRE(back.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(back[i].model == rows[i].model);
    CHECK(back[i].threshold == Approx(rows[i].threshold).epsilon(1e-9));
    CHECK(back[i].options == rows[i].options);
  }
  const std::vector<float> layer1 = cache::layer_thresholds(back, "qwen2-vl", 1);
  REQUIRE(layer1.size() == 3);
  CHECK(layer1[2] == Approx(0.55f));
  CHECK_THROWS_WITH(cache::layer_thresholds(back, "qwen2-vl", 7), Catch::Contains("no thresholds for layer 7"));
  CHECK_THROWS_WITH(cache::layer_thresholds(back, "other", 0), Catch::Contains("no thresholds for model 'other'"));
  auto gap = rows;
  gap.erase(gap.begin() + 1);  // layer 0 head 1
  CHECK_THROWS_WITH(cache::layer_thresholds(gap, "qwen2-vl", 0), Catch::Contains("no threshold for head 1"));
}

TEST_CASE("thresholds: a malformed file is an error naming the file, line and fault", "[cache][calibrate]") {
  test::TempDir dir;
  const std::string head = R"({"format": "vecattn-thresholds", "version": 1, "rows": [)";
  const std::pair<std::string, std::string> cases[] = {
      {"{", "ends early"},
      {R"({"format": "other", "version": 1, "rows": []})", "\"format\" must be"},
      {R"({"format": "vecattn-thresholds", "version": 2, "rows": []})", "\"version\" must be 1"},
      {head + "\n" + R"({"model": "m", "layer": 0, "head": 0, "threshold": 2}]})", "line 2: threshold must be in (0, 1]"},
      {head + R"({"model": "m", "layer": -1, "head": 0, "threshold": 0.5}]})", "\"layer\" must be an integer"},
      {head + R"({"model": "m", "layer": 0, "threshold": 0.5}]})", "has no \"head\""},
      {head + R"({"model": "m", "layer": 0, "head": 0, "threshold": 0.5, "extra": 1}]})", "unknown key \"extra\""},
  };
  for (const auto& [text, expect] : cases) {
    INFO(text);
    write_text(dir.file("bad.json"), text);
    CHECK_THROWS_WITH(cache::read_thresholds_file(dir.file("bad.json")),
                      Catch::Contains(expect) && Catch::Contains(dir.file("bad.json")));
  }
  CHECK_THROWS_WITH(cache::read_thresholds_file(dir.file("none.json")), Catch::Contains("cannot be opened"));
}
