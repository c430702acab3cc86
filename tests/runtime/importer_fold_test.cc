// Constant folding and shape inference (runtime/passes/fold.h) on hand-built graphs: the
// exporter's dynamic-batch shape arithmetic must fold to constants; bad graphs must throw.
#include <gtest/gtest.h>

#include <limits>
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

TEST(ImporterFold, DynamicBatchReshapeChainFolds) {
  // x -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> y : [batch, 48]
  Graph g = BaseGraph("y");
  g.initializers["zero"] = Ints({0}, {});
  g.initializers["axes0"] = Ints({0}, {1});
  g.initializers["minus1"] = Ints({-1}, {1});
  g.nodes.push_back(MakeNode("Shape", "shape", {"x"}, {"s"}));
  Node gather = MakeNode("Gather", "gather", {"s", "zero"}, {"b"});
  SetInt(&gather, "axis", 0);
  g.nodes.push_back(gather);
  g.nodes.push_back(MakeNode("Unsqueeze", "unsq", {"b", "axes0"}, {"b1"}));
  Node cat = MakeNode("Concat", "cat", {"b1", "minus1"}, {"shape"});
  SetInt(&cat, "axis", 0);
  g.nodes.push_back(cat);
  g.nodes.push_back(MakeNode("Reshape", "reshape", {"x", "shape"}, {"y"}));
  const Folded f = FoldAndInferShapes(g, 5);
  EXPECT_TRUE(f.dynamic_batch);
  ASSERT_EQ(f.compute.size(), 1u);
  EXPECT_EQ(f.compute[0].op, "Reshape");
  EXPECT_TRUE(f.IsConst("shape"));
  EXPECT_EQ(f.Value("shape").i, (std::vector<int64_t>{5, -1}));
  EXPECT_EQ(f.Value("y").dims, (std::vector<int64_t>{5, 48}));
}

TEST(ImporterFold, ExpandWhereEqualConstantOfShapeFold) {
  // The exporter's expand(B, -1, -1) idiom on a [1,1,3] parameter.
  Graph g = BaseGraph("out");
  g.initializers["tok"] = MakeTensor(DType::kFloat, {1, 1, 3}, "tok");
  g.initializers["tok"].f = {1.f, 2.f, 3.f};
  g.initializers["spec"] = Ints({2, -1, -1}, {3});
  Node cos = MakeNode("ConstantOfShape", "cos", {"three"}, {"ones"});
  Attr v;
  v.kind = Attr::kTensor;
  v.t = Ints({1}, {1});
  cos.attrs["value"] = v;
  g.initializers["three"] = Ints({3}, {1});
  g.initializers["m1"] = Ints({-1}, {});
  g.nodes.push_back(cos);
  g.nodes.push_back(MakeNode("Mul", "mul", {"ones", "m1"}, {"neg"}));
  g.nodes.push_back(MakeNode("Equal", "eq", {"spec", "neg"}, {"is_neg"}));
  g.nodes.push_back(MakeNode("Where", "where", {"is_neg", "ones", "spec"}, {"shape"}));
  g.nodes.push_back(MakeNode("Expand", "expand", {"tok", "shape"}, {"out"}));
  const Folded f = FoldAndInferShapes(g, 2);
  EXPECT_TRUE(f.compute.empty());
  const Tensor& out = f.Value("out");
  ASSERT_TRUE(out.has_data);
  EXPECT_EQ(out.dims, (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(out.f, (std::vector<float>{1, 2, 3, 1, 2, 3}));
}

TEST(ImporterFold, SliceClampsLikeOnnx) {
  Graph g = BaseGraph("y");
  g.initializers["data"] = Ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {10});
  g.initializers["st"] = Ints({-3}, {1});
  g.initializers["en"] = Ints({std::numeric_limits<int64_t>::max()}, {1});
  g.initializers["st2"] = Ints({std::numeric_limits<int64_t>::max()}, {1});
  g.initializers["en2"] = Ints({std::numeric_limits<int64_t>::min()}, {1});
  g.initializers["ax"] = Ints({0}, {1});
  g.initializers["step"] = Ints({-4}, {1});
  g.nodes.push_back(MakeNode("Slice", "s1", {"data", "st", "en", "ax"}, {"a"}));
  g.nodes.push_back(MakeNode("Slice", "s2", {"data", "st2", "en2", "ax", "step"}, {"b"}));
  g.nodes.push_back(MakeNode("Identity", "y", {"x"}, {"y"}));
  const Folded f = FoldAndInferShapes(g, 1);
  EXPECT_EQ(f.Value("a").i, (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(f.Value("b").i, (std::vector<int64_t>{9, 5, 1}));
}

TEST(ImporterFold, TransposeAndGatherOfConstants) {
  Graph g = BaseGraph("x");
  g.initializers["w"] = Ints({0, 1, 2, 3, 4, 5}, {2, 3});
  g.initializers["idx"] = Ints({2, 0}, {2});
  Node t = MakeNode("Transpose", "t", {"w"}, {"wt"});
  SetInts(&t, "perm", {1, 0});
  g.nodes.push_back(t);
  Node ga = MakeNode("Gather", "ga", {"wt", "idx"}, {"rows"});
  SetInt(&ga, "axis", 0);
  g.nodes.push_back(ga);
  const Folded f = FoldAndInferShapes(g, 1);
  EXPECT_EQ(f.Value("wt").i, (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(f.Value("rows").i, (std::vector<int64_t>{2, 5, 0, 3}));
  EXPECT_EQ(f.Value("rows").dims, (std::vector<int64_t>{2, 2}));
}

TEST(ImporterFold, RangeAndDeadNodes) {
  Graph g = BaseGraph("x");
  g.initializers["a"] = Ints({1}, {});
  g.initializers["b"] = Ints({10}, {});
  g.initializers["d"] = Ints({3}, {});
  g.nodes.push_back(MakeNode("Range", "r", {"a", "b", "d"}, {"r"}));
  g.nodes.push_back(MakeNode("Relu", "dead", {"x"}, {"unused"}));
  const Folded f = FoldAndInferShapes(g, 1);
  EXPECT_EQ(f.Value("r").i, (std::vector<int64_t>{1, 4, 7}));
  EXPECT_TRUE(f.compute.empty()) << "compute nodes no output depends on are dropped";
}

TEST(ImporterFold, Errors) {
  {
    Graph g = BaseGraph("y");
    g.nodes.push_back(MakeNode("NonMaxSuppression", "nms_3", {"x"}, {"y"}));
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); },
                                "unsupported op 'NonMaxSuppression' (node 'nms_3', opset 17)");
  }
  {
    Graph g = BaseGraph("b");
    g.nodes.push_back(MakeNode("Relu", "r1", {"b"}, {"a"}));
    g.nodes.push_back(MakeNode("Relu", "r2", {"a"}, {"b"}));
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "graph has a cycle");
  }
  {
    Graph g = BaseGraph("y");
    g.nodes.push_back(MakeNode("Add", "add", {"x", "weights"}, {"y"}));
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); },
                                "input 'weights' is not produced by any node, initializer");
  }
  {
    Graph g = BaseGraph("y");
    g.initializers["big"] = Ints({1 << 20, 1 << 20}, {2});
    g.nodes.push_back(MakeNode("ConstantOfShape", "cos", {"big"}, {"y"}));
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "elements");
  }
  {
    Graph g = BaseGraph("y");
    g.initializers["shape"] = Ints({7, -1}, {2});
    g.nodes.push_back(MakeNode("Reshape", "rs", {"x", "shape"}, {"y"}));
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 2); },
                                "node 'rs' (Reshape): cannot reshape [2,3,4,4] to [7,-1]");
  }
  {
    Graph g = BaseGraph("y");
    g.initializers["a"] = Ints({std::numeric_limits<int64_t>::max()}, {1});
    g.initializers["b"] = Ints({2}, {1});
    g.nodes.push_back(MakeNode("Mul", "m", {"a", "b"}, {"y"}));
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "integer overflow");
  }
  {
    Graph g = BaseGraph("y");
    g.inputs[0].elem_type = 7;
    test::ExpectErrorContaining([&] { FoldAndInferShapes(g, 1); }, "must be float32");
  }
}

}  // namespace
}  // namespace adalog::graph
