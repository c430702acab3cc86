// Constant folding of the ops Swin exports add (runtime/passes/eval_ops_swin.cc) on hand-built
// graphs, with the expected values worked out by hand.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/graph.h"
#include "runtime/passes/fold.h"
#include "tests/util/expect_error.h"
#include "tests/util/fold_graph.h"

namespace adalog::graph {
namespace {

using namespace fold_test;  // MakeNode, SetInt(s), Ints, Floats, BaseGraph

TEST(SwinFold, ModFollowsTheDivisorSignUnlessFmod) {
  Graph g = BaseGraph("x");
  g.initializers["a"] = Ints({-7, 7, -7, 7, 6}, {5});
  g.initializers["b"] = Ints({3, 3, -3, -3, 3}, {5});
  g.nodes.push_back(MakeNode("Mod", "mod", {"a", "b"}, {"m"}));
  Node f1 = MakeNode("Mod", "fmod", {"a", "b"}, {"fm"});
  SetInt(&f1, "fmod", 1);
  g.nodes.push_back(f1);
  const Folded f = FoldAndInferShapes(g, 1);
  EXPECT_EQ(f.Value("m").i, (std::vector<int64_t>{2, 1, -1, -2, 0}));   // Python's %
  EXPECT_EQ(f.Value("fm").i, (std::vector<int64_t>{-1, 1, -1, 1, 0}));  // C's fmod
}

TEST(SwinFold, ModByZeroAndFloatModWithoutFmodThrow) {
  Graph g = BaseGraph("x");
  g.initializers["a"] = Ints({4}, {1});
  g.initializers["z"] = Ints({0}, {1});
  g.nodes.push_back(MakeNode("Mod", "mod0", {"a", "z"}, {"m"}));
  test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "Mod by zero");
  Graph h = BaseGraph("x");
  h.initializers["a"] = Floats({4.f}, {1});
  h.initializers["b"] = Floats({3.f}, {1});
  h.nodes.push_back(MakeNode("Mod", "modf", {"a", "b"}, {"m"}));
  test::ExpectErrorContaining([&] { FoldAndInferShapes(h, 1); }, "needs fmod=1");
}

TEST(SwinFold, ScatterNDWritesRowsAndElements) {
  // torchvision's mask[h0:h1, w0:w1] = k: ScatterND of a [2, 2, 2] index grid into a zero [3, 4].
  Graph g = BaseGraph("x");
  g.initializers["data"] = Floats(std::vector<float>(12, 0.f), {3, 4});
  g.initializers["idx"] = Ints({1, 2, 1, 3, 2, 2, 2, 3}, {2, 2, 2});
  g.initializers["upd"] = Floats({5, 6, 7, 8}, {2, 2});
  g.nodes.push_back(MakeNode("ScatterND", "sc", {"data", "idx", "upd"}, {"m"}));
  // Row form: index depth 1 replaces whole rows (row -3 = row 0).
  g.initializers["ridx"] = Ints({-3}, {1, 1});
  g.initializers["rupd"] = Floats({1, 2, 3, 4}, {1, 4});
  g.nodes.push_back(MakeNode("ScatterND", "sc_rows", {"m", "ridx", "rupd"}, {"m2"}));
  const Folded f = FoldAndInferShapes(g, 1);
  EXPECT_EQ(f.Value("m").f, (std::vector<float>{0, 0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8}));
  EXPECT_EQ(f.Value("m2").f, (std::vector<float>{1, 2, 3, 4, 0, 0, 5, 6, 0, 0, 7, 8}));
}

TEST(SwinFold, ScatterNDRejectsBadIndicesAndReductions) {
  Graph g = BaseGraph("x");
  g.initializers["data"] = Floats(std::vector<float>(4, 0.f), {2, 2});
  g.initializers["idx"] = Ints({2, 0}, {1, 2});
  g.initializers["upd"] = Floats({1}, {1});
  g.nodes.push_back(MakeNode("ScatterND", "sc", {"data", "idx", "upd"}, {"m"}));
  test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "out of range on axis 0");
  g.nodes[0].attrs["reduction"].kind = Attr::kString;
  g.nodes[0].attrs["reduction"].s = "add";
  test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "reduction 'add'");
}

TEST(SwinFold, PadConstantValuesAndShapeOnActivations) {
  // Constant data: [2, 2] padded (top 1, left 0, bottom 0, right 2) with 9.
  Graph g = BaseGraph("y");
  g.initializers["d"] = Floats({1, 2, 3, 4}, {2, 2});
  g.initializers["p"] = Ints({1, 0, 0, 2}, {4});
  g.initializers["v"] = Floats({9}, {});
  g.nodes.push_back(MakeNode("Pad", "padc", {"d", "p", "v"}, {"c"}));
  // Activations: NHWC-style pad of x [B, 3, 4, 4] on axes 2 and 3 to 8 x 8 (shape only, stays a
  // compute node).
  g.initializers["p4"] = Ints({0, 0, 0, 0, 0, 0, 4, 4}, {8});
  g.nodes.push_back(MakeNode("Pad", "pad_x", {"x", "p4", ""}, {"y"}));
  const Folded f = FoldAndInferShapes(g, 3);
  EXPECT_EQ(f.Value("c").dims, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(f.Value("c").f, (std::vector<float>{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9}));
  ASSERT_EQ(f.compute.size(), 1u);
  EXPECT_EQ(f.compute[0].op, "Pad");
  EXPECT_EQ(f.Value("y").dims, (std::vector<int64_t>{3, 3, 8, 8}));
}

TEST(SwinFold, PadRejectsNonConstantModes) {
  Graph g = BaseGraph("y");
  g.initializers["p4"] = Ints({0, 0, 0, 0, 0, 0, 1, 1}, {8});
  Node n = MakeNode("Pad", "pad_r", {"x", "p4"}, {"y"});
  n.attrs["mode"].kind = Attr::kString;
  n.attrs["mode"].s = "reflect";
  g.nodes.push_back(n);
  test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "mode 'reflect'");
}

TEST(SwinFold, GlobalAveragePoolShape) {
  Graph g = BaseGraph("y");
  g.nodes.push_back(MakeNode("GlobalAveragePool", "gap", {"x"}, {"y"}));
  const Folded f = FoldAndInferShapes(g, 2);
  EXPECT_EQ(f.Value("y").dims, (std::vector<int64_t>{2, 3, 1, 1}));
}

}  // namespace
}  // namespace adalog::graph
