// JSON output of the `adalog` commands (`--json`, report.json) through nlohmann-json: the one
// place that decides how numbers are rounded and how strings that are not UTF-8 are written.
#pragma once

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace adalog::cli {

// Keys keep the order they were added in (the documented order of each object).
using Json = nlohmann::ordered_json;

// `v` rounded to `digits` decimals (as the printf-era --json printed it: %.6f, %.3f); nlohmann
// writes the shortest text that reads back as that double, so trailing zeros are dropped.
inline Json Rounded(double v, int digits) {
  if (!std::isfinite(v)) return Json(nullptr);
  const double p = std::pow(10.0, digits);
  return Json(std::nearbyint(v * p) / p);
}

// Compact (indent < 0) or indented text. Strings are written as UTF-8 (non-ASCII characters
// unescaped); bytes that are not UTF-8 (a file name is any bytes on Linux) become U+FFFD
// instead of failing, so the output is always valid JSON.
inline std::string JsonText(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// One object on one line of stdout.
inline void PrintJsonLine(const Json& j) { std::printf("%s\n", JsonText(j).c_str()); }

}  // namespace adalog::cli
