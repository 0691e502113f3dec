#include "codegen/key.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <vector>

#include "codegen/error.h"

namespace vecattn {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

// "pq64" with prefix "pq" -> 64; nullopt-like -1 when the token is not of that form.
int prefixed_int(std::string_view token, std::string_view prefix) {
  if (token.substr(0, prefix.size()) != prefix) return -1;
  std::string_view digits = token.substr(prefix.size());
  if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0]))) return -1;
  int value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return -1;
  return value;
}

[[noreturn]] void bad(std::string_view what, std::string_view text, std::string_view why) {
  throw Error(Status::invalid_argument, fmt::format("invalid {} '{}': {}", what, text, why));
}

}  // namespace

const char* kernel_name(KernelKind k) {
  switch (k) {
    case KernelKind::pool: return "pool";
    case KernelKind::select: return "select";
    case KernelKind::sparse_attn: return "sparse_attn";
    case KernelKind::dense_attn: return "dense_attn";
    case KernelKind::recall: return "recall";
  }
  return "?";
}
const char* dtype_name(DType d) { return d == DType::fp16 ? "fp16" : "bf16"; }
const char* path_name(AttnPath p) { return p == AttnPath::mma ? "mma" : "wgmma"; }
int dtype_size(DType) { return 2; }

KeyFields key_fields(KernelKind k) {
  switch (k) {
    case KernelKind::pool: return {true, false, false, false};
    case KernelKind::select: return {true, true, true, true};
    case KernelKind::sparse_attn: return {true, true, true, true};
    case KernelKind::dense_attn: return {false, false, false, true};
    case KernelKind::recall: return {true, false, false, true};
  }
  return {};
}

KernelKind parse_kernel(std::string_view t) {
  for (auto k : {KernelKind::pool, KernelKind::select, KernelKind::sparse_attn, KernelKind::dense_attn, KernelKind::recall})
    if (t == kernel_name(k)) return k;
  bad("kernel", t, "use pool, select, sparse_attn, dense_attn or recall");
}

DType parse_dtype(std::string_view t) {
  if (t == "fp16" || t == "float16" || t == "half") return DType::fp16;
  if (t == "bf16" || t == "bfloat16") return DType::bf16;
  bad("dtype", t, "use fp16 or bf16");
}

std::string parse_arch(std::string_view t) {
  int cc = prefixed_int(t, "sm_");
  bool accel = false;
  if (cc < 0 && t.size() > 3 && t.back() == 'a') {
    cc = prefixed_int(t.substr(0, t.size() - 1), "sm_");
    accel = true;
  }
  if (cc < 0) bad("arch", t, "expected sm_<major><minor>[a], e.g. sm_80 or sm_90a");
  if (cc < 80) bad("arch", t, "vecattn needs sm_80 or newer (tensor-core mma.sync, cp.async)");
  return fmt::format("sm_{}{}", cc, accel ? "a" : "");
}

KernelKey KernelKey::canonical() const {
  KernelKey k = *this;
  KeyFields f = key_fields(kernel);
  if (!f.pq) k.pq = 0;
  if (!f.bk) k.bk = 0;
  if (!f.gk) k.gk = 0;
  if (!f.causal) k.causal = false;
  return k;
}

std::string KernelKey::str() const {
  KeyFields f = key_fields(kernel);
  std::string s = fmt::format("{}/", kernel_name(kernel));
  if (f.pq) s += fmt::format("pq{}-", pq);
  if (f.bk) s += fmt::format("bk{}-", bk);
  if (f.gk) s += fmt::format("gk{}-", gk);
  s += fmt::format("d{}-{}-{}", head_dim, dtype_name(dtype), arch);
  if (f.causal) s += causal ? "-causal" : "-noncausal";
  return s;
}

KernelKey KernelKey::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) bad("kernel key", text, "expected <kernel>/<fields>, e.g. pool/pq64-d128-bf16-sm_90a");
  KernelKey k;
  k.kernel = parse_kernel(text.substr(0, slash));
  bool have_dim = false, have_dtype = false, have_arch = false;
  for (std::string_view tok : split(text.substr(slash + 1), '-')) {
    int v;
    if ((v = prefixed_int(tok, "pq")) >= 0) k.pq = v;
    else if ((v = prefixed_int(tok, "bk")) >= 0) k.bk = v;
    else if ((v = prefixed_int(tok, "gk")) >= 0) k.gk = v;
    else if ((v = prefixed_int(tok, "d")) >= 0) { k.head_dim = v; have_dim = true; }
    else if (tok == "fp16" || tok == "bf16") { k.dtype = parse_dtype(tok); have_dtype = true; }
    else if (tok.substr(0, 3) == "sm_") { k.arch = parse_arch(tok); have_arch = true; }
    else if (tok == "causal") k.causal = true;
    else if (tok == "noncausal") k.causal = false;
    else bad("kernel key", text, fmt::format("unknown field '{}'", tok));
  }
  if (!have_dim || !have_dtype || !have_arch) bad("kernel key", text, "needs a head dim (d128), a dtype and an arch");
  if (k.str() != text)
    bad("kernel key", text, fmt::format("not in canonical form; the canonical form is '{}'", k.str()));
  return k;
}

TileConfig TileConfig::canonical(KernelKind k) const {
  TileConfig c = *this;
  if (k == KernelKind::pool || k == KernelKind::recall) {
    c.rows = c.stages = 0;
    c.path = AttnPath::mma;
  }
  const bool attention = k == KernelKind::sparse_attn || k == KernelKind::dense_attn;
  if (!attention || c.path != AttnPath::mma) c.warp_rows = kDefaultWarpRows;
  return c;
}

std::string TileConfig::str(KernelKind k) const {
  switch (k) {
    case KernelKind::pool:
    case KernelKind::recall: return fmt::format("w{}", warps);
    // The mma.sync select keeps its original name (pretuned rows and caches stay valid).
    case KernelKind::select:
      return fmt::format("bq{}-w{}-s{}{}", rows, warps, stages, path == AttnPath::wgmma ? "-wgmma" : "");
    case KernelKind::sparse_attn:
    case KernelKind::dense_attn: {
      // Rows per warp only when not the 16 that every name before the field meant.
      const std::string r = warp_rows == kDefaultWarpRows ? "" : fmt::format("-r{}", warp_rows);
      return fmt::format("bn{}-w{}{}-s{}-{}", rows, warps, r, stages, path_name(path));
    }
  }
  return "?";
}

TileConfig TileConfig::parse(KernelKind k, std::string_view text) {
  TileConfig c;
  bool have_warps = false;
  for (std::string_view tok : split(text, '-')) {
    int v;
    if ((v = prefixed_int(tok, "bq")) >= 0 || (v = prefixed_int(tok, "bn")) >= 0) c.rows = v;
    else if ((v = prefixed_int(tok, "w")) >= 0) { c.warps = v; have_warps = true; }
    else if ((v = prefixed_int(tok, "s")) >= 0) c.stages = v;
    else if ((v = prefixed_int(tok, "r")) >= 0) c.warp_rows = v;
    else if (tok == "mma") c.path = AttnPath::mma;
    else if (tok == "wgmma") c.path = AttnPath::wgmma;
    else bad("tile config", text, fmt::format("unknown field '{}'", tok));
  }
  if (!have_warps) bad("tile config", text, "needs a warp count (w4)");
  if (c.str(k) != text)
    bad("tile config", text, fmt::format("not in canonical form for {}; expected the shape '{}'", kernel_name(k), c.str(k)));
  return c;
}

Variant Variant::parse(std::string_view text) {
  auto plus = text.find('+');
  if (plus == std::string_view::npos) bad("variant", text, "expected <kernel key>+<tile config>");
  Variant v;
  v.key = KernelKey::parse(text.substr(0, plus));
  v.config = TileConfig::parse(v.key.kernel, text.substr(plus + 1));
  return v;
}

}  // namespace vecattn
