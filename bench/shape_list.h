// Reads the GEMM shape lists of bench/shapes/*.txt (format: bench/README.md, "A GEMM shape list"):
// one "M N K  # comment" per line, '#' lines and blank lines skipped. The benchmark programs take
// their GEMM shapes from here, so a shape added to a list is benchmarked without a code change.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace adalog::bench {

struct GemmShape {
  int m = 0, n = 0, k = 0;
  std::string comment;  // e.g. "deit_s b8 fc1 x12"
};

// $ADALOG_BENCH_SHAPES if set, else bench/shapes/<file> in the source tree.
inline std::string ShapeListPath(const std::string& file) {
  if (const char* env = std::getenv("ADALOG_BENCH_SHAPES")) return std::string(env) + "/" + file;
  return std::string(ADALOG_SOURCE_DIR) + "/bench/shapes/" + file;
}

// The shapes of `file` whose comment contains `filter` (all when empty), each (M, N, K) once, in
// file order. Exits with a message naming the file and line on anything unreadable: a benchmark
// run on a wrong shape list would measure the wrong thing silently.
inline std::vector<GemmShape> ReadShapeList(const std::string& file, const std::string& filter = "") {
  const std::string path = ShapeListPath(file);
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "shape list %s: cannot open\n", path.c_str());
    std::exit(2);
  }
  std::vector<GemmShape> shapes;
  std::set<std::tuple<int, int, int>> seen;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    const size_t hash = line.find('#');
    const std::string head = line.substr(0, hash);
    if (head.find_first_not_of(" \t\r") == std::string::npos) continue;
    GemmShape s;
    std::istringstream fields(head);
    std::string rest;
    if (!(fields >> s.m >> s.n >> s.k) || s.m <= 0 || s.n <= 0 || s.k <= 0 || (fields >> rest)) {
      std::fprintf(stderr, "shape list %s:%d: want \"M N K  # comment\" with positive integers, got \"%s\"\n",
                   path.c_str(), no, line.c_str());
      std::exit(2);
    }
    if (hash != std::string::npos) {
      s.comment = line.substr(line.find_first_not_of(" \t", hash + 1));
    }
    if (!filter.empty() && s.comment.find(filter) == std::string::npos) continue;
    if (seen.insert({s.m, s.n, s.k}).second) shapes.push_back(s);
  }
  if (shapes.empty()) {
    std::fprintf(stderr, "shape list %s: no shape matches \"%s\"\n", path.c_str(), filter.c_str());
    std::exit(2);
  }
  return shapes;
}

}  // namespace adalog::bench
