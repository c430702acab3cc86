// adalog's C++ API from an installed package: loads a model, shares one Session between 4
// threads, and checks every thread's logits against a sequential run byte for byte.
//   app MODEL [THREADS] [MAX_BATCH]   exit 0: identical; 1: a difference; 2: an error
// It also prints the resident memory (Linux /proc/self/statm) after loading, after the session,
// and after Reserve(THREADS): the cost of one session and of each extra concurrent call.
#include <adalog/adalog.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// Resident set size in MiB (0 where /proc is missing).
double RssMiB() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0.0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// Deterministic images in [-1, 1] (a 32-bit LCG), so the example needs no data file.
std::vector<float> MakeImages(int64_t floats, uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(floats));
  uint32_t s = seed;
  for (float& v : x) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) / 8388608.f - 1.f;
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [THREADS]\n", argv[0]);
    return 2;
  }
  const int threads = argc > 2 ? std::stoi(argv[2]) : 4;
  const int max_batch = argc > 3 ? std::stoi(argv[3]) : 4;
  try {
    const double rss0 = RssMiB();
    std::shared_ptr<const adalog::LoadedModel> model = adalog::LoadModel(argv[1]);
    const double rss_model = RssMiB();
    adalog::SessionOptions options;
    options.max_batch = max_batch;
    options.num_threads = 1;  // under concurrency: one OpenMP thread per call (docs/deploy.md)
    adalog::Session session(model, options);
    const double rss_session = RssMiB();
    session.Reserve(threads);  // every concurrent call's workspace allocated up front
    const double rss_reserved = RssMiB();
    std::printf("memory (RSS MiB): model %.1f, session (1 workspace, max batch %d) +%.1f, "
                "%d more workspaces +%.1f (%.2f each; workspace_bytes %.2f MiB)\n",
                rss_model - rss0, max_batch, rss_session - rss_model, threads - 1,
                rss_reserved - rss_session,
                threads > 1 ? (rss_reserved - rss_session) / (threads - 1) : 0.0,
                static_cast<double>(session.workspace_bytes()) / (1 << 20));

    // 8 batches of 1..4 images, each run once sequentially for the reference.
    const int kBatches = 8;
    std::vector<std::vector<float>> images, want;
    std::vector<std::vector<int64_t>> shapes;
    for (int b = 0; b < kBatches; ++b) {
      shapes.push_back(session.input_shape(1 + b % options.max_batch));
      const std::vector<int64_t>& s = shapes.back();
      images.push_back(MakeImages(s[0] * s[1] * s[2] * s[3], 7u + static_cast<uint32_t>(b)));
      want.push_back(session.Run(images.back().data(), s));
    }
    if (want[0] == want[1]) {
      std::fprintf(stderr, "degenerate: two different batches gave the same logits\n");
      return 1;
    }

    // Every thread runs every batch, starting at a different one; results byte-compared.
    std::vector<int> mismatches(static_cast<size_t>(threads), 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int j = 0; j < 4 * kBatches; ++j) {
          const int b = (j + 3 * t) % kBatches;
          std::vector<float> got(want[b].size(), -1.f);
          session.Run(images[b].data(), shapes[b], got.data());
          if (std::memcmp(got.data(), want[b].data(), got.size() * sizeof(float)) != 0) {
            ++mismatches[static_cast<size_t>(t)];
          }
        }
      });
    }
    for (std::thread& th : pool) th.join();
    int total = 0;
    for (int m : mismatches) total += m;
    std::printf("%s: executor %s, %d threads x %d runs on one session, %d workspaces of %zu bytes, "
                "%d mismatches\n",
                argv[1], session.executor_kind(), threads, 4 * kBatches, session.num_workspaces(),
                session.workspace_bytes(), total);
    return total == 0 ? 0 : 1;
  } catch (const adalog::Error& e) {
    std::fprintf(stderr, "adalog error: %s\n", e.what());
    return 2;
  }
}
