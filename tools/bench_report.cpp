#include "tools/bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <stdexcept>

namespace vecattn::bench {
namespace {

std::string series_name(const BenchRow& r) {
  return r.method == "vecattn" ? fmt::format("vecattn t={:g}", r.threshold) : r.method;
}

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "null"; }

std::string xml(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o + "\"";
}

// Two lines: where and when, then the shape of the problem.
std::string title_line1(const BenchMeta& m) { return fmt::format("{}, {}", m.device, m.date); }
std::string title_line2(const BenchMeta& m) {
  return fmt::format("{} B={} Hq={} Hkv={} D={} {}, Pq={} Bk={} Gk={}, {}", m.dtype, m.batch, m.q_heads, m.kv_heads,
                     m.head_dim, m.causal ? "causal" : "non-causal", m.pq, m.bk, m.gk, m.input);
}

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"};
constexpr const char* kSplitColors[] = {"#8fbc8f", "#4682b4", "#cd5c5c"};  // pool, select, attend

}  // namespace

std::string to_csv(const BenchMeta& m, const std::vector<BenchRow>& rows) {
  std::string s = fmt::format("# device={}\n# dtype={}\n# batch={} q_heads={} kv_heads={} head_dim={} causal={}\n"
                              "# pq={} bk={} gk={}\n# input={}\n# date={}\n",
                              m.device, m.dtype, m.batch, m.q_heads, m.kv_heads, m.head_dim, int(m.causal), m.pq, m.bk,
                              m.gk, m.input, m.date);
  s += "seq_len,method,threshold,ms,pool_ms,select_ms,attend_ms,sparsity,recall,rel_error,tflops,speedup,workspace_mib\n";
  for (const auto& r : rows)
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.seq_len, r.method, num(r.threshold), num(r.ms),
                     num(r.pool_ms), num(r.select_ms), num(r.attend_ms), num(r.sparsity), num(r.recall),
                     num(r.rel_error), num(r.tflops), num(r.speedup), num(r.workspace_mib));
  return s;
}

std::string to_json(const BenchMeta& m, const std::vector<BenchRow>& rows) {
  std::string s = fmt::format(
      "{{\n  \"meta\": {{\"device\": {}, \"dtype\": {}, \"batch\": {}, \"q_heads\": {}, \"kv_heads\": {}, \"head_dim\": {}, "
      "\"causal\": {}, \"pq\": {}, \"bk\": {}, \"gk\": {}, \"input\": {}, \"date\": {}}},\n  \"rows\": [\n",
      json_string(m.device), json_string(m.dtype), m.batch, m.q_heads, m.kv_heads, m.head_dim, m.causal ? "true" : "false",
      m.pq, m.bk, m.gk, json_string(m.input), json_string(m.date));
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    s += fmt::format("    {{\"seq_len\": {}, \"method\": {}, \"threshold\": {}, \"ms\": {}, \"pool_ms\": {}, "
                     "\"select_ms\": {}, \"attend_ms\": {}, \"sparsity\": {}, \"recall\": {}, \"rel_error\": {}, "
                     "\"tflops\": {}, \"speedup\": {}, \"workspace_mib\": {}}}{}\n",
                     r.seq_len, json_string(r.method), num(r.threshold), num(r.ms), num(r.pool_ms), num(r.select_ms),
                     num(r.attend_ms), num(r.sparsity), num(r.recall), num(r.rel_error), num(r.tflops), num(r.speedup),
                     num(r.workspace_mib), i + 1 < rows.size() ? "," : "");
  }
  return s + "  ]\n}\n";
}

std::string to_svg(const BenchMeta& m, const std::vector<BenchRow>& rows) {
  constexpr double kW = 960, kH = 440;
  constexpr double kPlotTop = 70, kPlotBottom = 370, kLeft0 = 70, kLeft1 = 440, kRight0 = 560, kRight1 = 920;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n"
      "<text x=\"{}\" y=\"34\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n",
      kW, kH, kW, kH, kW / 2, xml(title_line1(m)), kW / 2, xml(title_line2(m)));

  std::vector<int64_t> lengths;
  double lo = INFINITY, hi = 0;
  std::map<std::string, std::vector<const BenchRow*>> series;
  for (const auto& r : rows) {
    if (!std::isfinite(r.ms) || r.ms <= 0) continue;
    if (std::find(lengths.begin(), lengths.end(), r.seq_len) == lengths.end()) lengths.push_back(r.seq_len);
    lo = std::min(lo, r.ms);
    hi = std::max(hi, r.ms);
    series[series_name(r)].push_back(&r);
  }
  std::sort(lengths.begin(), lengths.end());
  if (lengths.empty()) return s + "<text x=\"480\" y=\"220\" text-anchor=\"middle\">no data</text>\n</svg>\n";

  // Left panel: log2 x over the lengths, log10 y over the latencies.
  const double lx0 = std::log2(double(lengths.front())), lx1 = std::log2(double(lengths.back()));
  const double ly0 = std::floor(std::log10(lo)), ly1 = std::ceil(std::log10(hi)) + (lo == hi ? 1 : 0);
  auto px = [&](double S) { return lx1 > lx0 ? kLeft0 + (std::log2(S) - lx0) / (lx1 - lx0) * (kLeft1 - kLeft0) : (kLeft0 + kLeft1) / 2; };
  auto py = [&](double ms) { return kPlotBottom - (std::log10(ms) - ly0) / (ly1 - ly0) * (kPlotBottom - kPlotTop); };
  s += "<g>\n";
  s += fmt::format("<text x=\"{}\" y=\"60\" text-anchor=\"middle\" font-size=\"12\">latency (ms) vs sequence length</text>\n",
                   (kLeft0 + kLeft1) / 2);
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft0, kPlotTop, kPlotBottom);
  s += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft0, kLeft1, kPlotBottom);
  for (double e = ly0; e <= ly1; ++e)
    s += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/><text x=\"{3}\" y=\"{4:.1f}\" "
                     "text-anchor=\"end\">{5:g}</text>\n",
                     kLeft0, py(std::pow(10, e)), kLeft1, kLeft0 - 4, py(std::pow(10, e)) + 4, std::pow(10, e));
  for (int64_t S : lengths)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}K</text>\n", px(double(S)), kPlotBottom + 14,
                     S / 1024);
  size_t color = 0;
  double legend_y = kPlotTop + 6;
  for (auto& [name, pts] : series) {
    std::sort(pts.begin(), pts.end(), [](const BenchRow* a, const BenchRow* b) { return a->seq_len < b->seq_len; });
    const char* c = kPalette[color++ % (sizeof(kPalette) / sizeof(kPalette[0]))];
    std::string poly;
    for (const BenchRow* r : pts) poly += fmt::format("{:.1f},{:.1f} ", px(double(r->seq_len)), py(r->ms));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", c, poly);
    for (const BenchRow* r : pts)
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(double(r->seq_len)), py(r->ms), c);
    s += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{:.1f}\">{}</text>\n",
                     kLeft0 + 8, legend_y, c, kLeft0 + 22, legend_y + 9, xml(name));
    legend_y += 14;
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">S (tokens)</text>\n</g>\n", (kLeft0 + kLeft1) / 2,
                   kPlotBottom + 30);

  // Right panel: stacked pool / select / attend bars of each prefill row.
  std::vector<const BenchRow*> splits;
  double top = 0;
  for (const auto& r : rows)
    if (r.method == "vecattn" && std::isfinite(r.pool_ms + r.select_ms + r.attend_ms)) {
      splits.push_back(&r);
      top = std::max(top, r.pool_ms + r.select_ms + r.attend_ms);
    }
  std::sort(splits.begin(), splits.end(), [](const BenchRow* a, const BenchRow* b) {
    return a->seq_len != b->seq_len ? a->seq_len < b->seq_len : a->threshold < b->threshold;
  });
  s += "<g>\n";
  s += fmt::format("<text x=\"{}\" y=\"60\" text-anchor=\"middle\" font-size=\"12\">vecattn time split (ms, linear)</text>\n",
                   (kRight0 + kRight1) / 2);
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", kRight0, kPlotTop, kPlotBottom);
  if (!splits.empty() && top > 0) {
    const double slot = (kRight1 - kRight0) / double(splits.size()), bar = std::min(28.0, slot * 0.7);
    auto by = [&](double ms) { return (kPlotBottom - kPlotTop) * ms / top; };
    for (int t = 0; t <= 4; ++t)
      s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", kRight0 - 4,
                       kPlotBottom - (kPlotBottom - kPlotTop) * t / 4 + 4, top * t / 4);
    for (size_t i = 0; i < splits.size(); ++i) {
      const BenchRow& r = *splits[i];
      const double x = kRight0 + slot * (double(i) + 0.5) - bar / 2;
      double y = kPlotBottom;
      const double parts[] = {r.pool_ms, r.select_ms, r.attend_ms};
      for (int p = 0; p < 3; ++p) {
        const double h = by(parts[p]);
        y -= h;
        s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n", x, y, bar, h,
                         kSplitColors[p]);
      }
      s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\">{:g}</text>\n", x + bar / 2,
                       kPlotBottom + 12, r.threshold);
      // One S label under each run of bars of the same length.
      const bool first = i == 0 || splits[i - 1]->seq_len != r.seq_len;
      if (first) {
        size_t n = 1;
        while (i + n < splits.size() && splits[i + n]->seq_len == r.seq_len) ++n;
        s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}K</text>\n",
                         kRight0 + slot * (double(i) + double(n) / 2), kPlotBottom + 26, r.seq_len / 1024);
      }
    }
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">S (tokens), threshold per bar</text>\n",
                     (kRight0 + kRight1) / 2, kPlotBottom + 42);
  }
  const char* names[] = {"pool", "select", "attend"};
  for (int p = 0; p < 3; ++p)
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                     kRight0 + 20 + p * 70, kPlotTop + 4, kSplitColors[p], kRight0 + 34 + p * 70, kPlotTop + 13, names[p]);
  return s + "</g>\n</svg>\n";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f || !(f << text) || !f.flush()) throw std::runtime_error("cannot write " + path);
}

}  // namespace vecattn::bench
