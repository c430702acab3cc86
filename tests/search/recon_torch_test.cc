// Block reconstruction against an independent PyTorch implementation of the same equations
// (tests/search/recon_torch_check.py, autograd in float64): for each quantizer kind of the hand
// plan, the training path's (float, run-time selected kernels) forward, loss and every gradient
// of one step from a perturbed starting point, then three whole iterations of ReconstructBlock
// (Adam on the alphas with the rounding regulariser switching on at iteration 2 and the exponent
// decaying, Adam with cosine decay on the step sizes) against torch.optim.Adam and
// CosineAnnealingLR. This test writes each case's block, plan and results as .npy + JSON into a
// temporary folder and runs the script, which compares and prints the errors; it is skipped when
// /usr/bin/python3 has no torch (scripts/setup.sh installs python3-torch).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/data/npy.h"
#include "search/recon/block_grad.h"
#include "search/recon/reconstruct.h"
#include "tests/search/block_setup.h"

namespace adalog::search {
namespace {

namespace fs = std::filesystem;
using recon_test::BlockSetup;
using recon_test::MakeSetup;
using recon_test::Perturb;

void Npy(const fs::path& dir, const std::string& name, const std::vector<float>& v,
         std::vector<int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  WriteNpyFloat32((dir / (name + ".npy")).string(), v.data(), shape);
}
std::vector<float> ToFloat(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }

const char* KindName(ActQuant::Kind k) {
  switch (k) {
    case ActQuant::Kind::kNone: return "none";
    case ActQuant::Kind::kUniform: return "uniform";
    case ActQuant::Kind::kLog: return "log";
    default: return "twin";
  }
}

// The quantizer of one activation site, as JSON (the fields BlockRecon reads from the plan).
std::string TensorActJson(const ActQuant& q) {
  std::ostringstream j;
  j << "{\"kind\": \"" << KindName(q.kind) << "\"";
  if (q.kind == ActQuant::Kind::kUniform) {
    const UniformParams& u = q.uniform.params;
    j << ", \"zp\": [" << u.zero_point << "], \"cmin\": " << u.CodeMin()
      << ", \"cmax\": " << u.CodeMax();
  } else if (q.kind == ActQuant::Kind::kLog) {
    j << ", \"bits\": " << q.log.bits << ", \"num\": " << q.log.RatioNum()
      << ", \"den\": " << q.log.RatioDen() << ", \"shift\": " << q.shift
      << ", \"folded\": " << (q.shift_folded ? "true" : "false");
  }
  j << "}";
  return j.str();
}
std::string HeadActJson(const UniformPerHead& q) {
  if (q.scales.empty()) return "{\"kind\": \"none\"}";
  std::ostringstream j;
  const UniformParams p0 = q.head(0);
  j << "{\"kind\": \"uniform\", \"zp\": [";
  for (size_t h = 0; h < q.zero_points.size(); ++h) j << (h ? ", " : "") << q.zero_points[h];
  j << "], \"cmin\": " << p0.CodeMin() << ", \"cmax\": " << p0.CodeMax() << "}";
  return j.str();
}

void WriteParams(const fs::path& dir, const std::string& prefix, const BlockTrainParams<float>& p) {
  for (int l = 0; l < kNumReconLinears; ++l) Npy(dir, prefix + "alpha_" + ReconLinearName(l), p.alpha[l]);
  for (int a = 0; a < kNumReconActs; ++a) {
    if (!p.act_scale[a].empty()) Npy(dir, prefix + "scale_" + ReconActName(a), p.act_scale[a]);
  }
}

// One case: block `b` of `s` written to `dir` with the C++ results the script compares.
void DumpCase(const BlockSetup& s, int b, const fs::path& dir) {
  fs::create_directories(dir);
  const BlockParams& blk = s.qm.model.blocks[static_cast<size_t>(b)];
  const BlockQuant& bq = s.qm.plan.blocks[static_cast<size_t>(b)];
  const int T = s.qm.model.num_tokens(), D = s.qm.model.dim;
  const std::vector<int64_t> act_shape = {s.batch, T, D};
  Npy(dir, "x", s.in[static_cast<size_t>(b)], act_shape);
  Npy(dir, "target", s.out[static_cast<size_t>(b)], act_shape);
  Npy(dir, "ln1_gamma", blk.ln1.gamma);
  Npy(dir, "ln1_beta", blk.ln1.beta);
  Npy(dir, "ln2_gamma", blk.ln2.gamma);
  Npy(dir, "ln2_beta", blk.ln2.beta);
  const LinearParams* lin[kNumReconLinears] = {&blk.qkv, &blk.proj, &blk.fc1, &blk.fc2};
  const LinearQuant* lq[kNumReconLinears] = {&bq.qkv, &bq.proj, &bq.fc1, &bq.fc2};
  std::ostringstream wj;
  for (int l = 0; l < kNumReconLinears; ++l) {
    const std::string n = ReconLinearName(l);
    Npy(dir, "w_" + n, lin[l]->weight, {lin[l]->out, lin[l]->in});
    Npy(dir, "b_" + n, lin[l]->bias);
    Npy(dir, "wscale_" + n, lq[l]->weight.scales);
    Npy(dir, "wzp_" + n, ToFloat(lq[l]->weight.zero_points));
    const UniformParams p0 = lq[l]->weight.channel(0);
    wj << (l ? ", " : "") << "\"" << n << "\": {\"cmin\": " << p0.CodeMin()
       << ", \"cmax\": " << p0.CodeMax() << "}";
  }

  // One step of the training path from a perturbed starting point.
  BlockRecon<float> br(s.qm.model, b, bq, s.batch, 2);
  BlockTrainParams<float> p = br.InitialParams();
  WriteParams(dir, "init_", p);
  Perturb(&p, 11 + static_cast<uint32_t>(b));
  WriteParams(dir, "start_", p);
  std::vector<float> out(s.in[static_cast<size_t>(b)].size()), dx(out.size());
  const double loss = br.Forward(p, s.in[static_cast<size_t>(b)].data(), s.batch,
                                 s.out[static_cast<size_t>(b)].data(), out.data());
  BlockTrainParams<float> g;
  br.Backward(p, &g, dx.data());
  Npy(dir, "out", out, act_shape);
  Npy(dir, "grad_x", dx, act_shape);
  WriteParams(dir, "grad_", g);

  // Three iterations of the whole loop on all images (batch = n), from the unperturbed start.
  ReconOptions o;
  o.iters = 3;
  o.batch = s.batch;
  o.warmup = 0.5;     // regulariser off at iteration 1, on at 2 (b = 14) and 3 (b = 2)
  o.lr_act = 4e-3;    // 100x the official 4e-5, so that the step sizes visibly move in 3 steps
  o.threads = 2;
  o.seed = 3;
  ReconStats st;
  const BlockTrainParams<float> after = ReconstructBlock(
      s.qm, b, s.in[static_cast<size_t>(b)].data(), s.out[static_cast<size_t>(b)].data(), s.batch,
      o, &st);
  WriteParams(dir, "after_", after);

  std::ofstream m(dir / "meta.json");
  m.precision(17);
  m << "{\"block\": " << b << ", \"batch\": " << s.batch << ", \"tokens\": " << T
    << ", \"dim\": " << D << ", \"hidden\": " << blk.fc1.out << ", \"heads\": " << blk.heads
    << ", \"attn_scale\": " << blk.attn_scale
    << ", \"gelu\": \"" << (blk.gelu == GeluKind::kErf ? "erf" : "tanh") << "\""
    << ", \"ln1_eps\": " << blk.ln1.eps << ", \"ln2_eps\": " << blk.ln2.eps
    << ", \"weights\": {" << wj.str() << "}"
    << ", \"acts\": {\"qkv.in\": " << TensorActJson(bq.qkv.input)
    << ", \"q\": " << HeadActJson(bq.attn.q) << ", \"k\": " << HeadActJson(bq.attn.k)
    << ", \"v\": " << HeadActJson(bq.attn.v) << ", \"probs\": " << TensorActJson(bq.attn.probs)
    << ", \"proj.in\": " << TensorActJson(bq.proj.input)
    << ", \"fc1.in\": " << TensorActJson(bq.fc1.input)
    << ", \"fc2.in\": " << TensorActJson(bq.fc2.input) << "}"
    << ", \"loss\": " << loss
    << ", \"loop\": {\"iters\": " << o.iters << ", \"warmup\": " << o.warmup
    << ", \"lr_alpha\": " << o.lr_alpha << ", \"lr_act\": " << o.lr_act
    << ", \"round_weight\": " << o.round_weight << ", \"b_start\": " << o.b_start
    << ", \"b_end\": " << o.b_end << ", \"first_loss\": " << st.first_loss
    << ", \"last_loss\": " << st.last_loss << "}}\n";
}

// Blocks 0, 1, 3, 4, 5 of the hand plan (block 2's twin post-GELU quantizer is refused).
TEST(ReconTorch, OneStepAndThreeIterationsMatchPyTorch) {
  const std::string script = std::string(ADALOG_SOURCE_DIR) + "/tests/search/recon_torch_check.py";
  const fs::path root = fs::path(::testing::TempDir()) /
                        ("adalog_recon_torch_" + std::to_string(::getpid()));
  fs::remove_all(root);
  int cases = 0;
  for (const GeluKind gelu : {GeluKind::kErf, GeluKind::kTanh}) {
    const BlockSetup s = MakeSetup(16, 4, gelu, gelu == GeluKind::kErf ? 21 : 22);
    for (int b : {0, 1, 3, 4, 5}) {
      if (gelu == GeluKind::kTanh && b != 0) continue;
      DumpCase(s, b, root / ("case" + std::to_string(cases++)));
    }
  }
  const std::string cmd = "/usr/bin/python3 " + script + " " + root.string() + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::printf("%s", output.c_str());
  fs::remove_all(root);
  if (rc == 77) GTEST_SKIP() << "no torch for /usr/bin/python3: " << output;
  EXPECT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("cases compared: " + std::to_string(cases)), std::string::npos) << output;
}

}  // namespace
}  // namespace adalog::search
