// The forward schedule (runtime/vit_schedule.h): stage grouping, the data path through named
// tensors, the stepping API's ranges, and that the FP32 executor reports taps in schedule order.
#include "runtime/vit_schedule.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

#include "runtime/executor_fp32.h"
#include "tests/util/exec_random_vit.h"

namespace adalog {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;

TEST(VitSchedule, RowLocalRunsFuseAcrossBlockBoundaries) {
  RandomVitSpec spec;
  spec.depth = 3;
  const VitModel m = MakeRandomVit(spec);
  const Schedule s = BuildSchedule(m);
  // patch_embed | tokens ln1 qkv | attn0 | proj .. add ln1 qkv | attn1 | ... | proj .. add | head
  ASSERT_EQ(s.stages.size(), static_cast<size_t>(2 * spec.depth + 3)) << DescribeSchedule(s);
  int mixing = 0, row_steps = 0;
  for (const Stage& st : s.stages) {
    ASSERT_LT(st.first, st.end);
    for (int i = st.first; i < st.end; ++i) {
      EXPECT_EQ(IsRowLocal(s.steps[i].op), st.kind == StageKind::kRows) << DescribeSchedule(s);
    }
    if (st.kind == StageKind::kMixing) {
      EXPECT_EQ(st.end - st.first, 1);
      ++mixing;
    } else {
      row_steps += st.end - st.first;
    }
  }
  EXPECT_EQ(mixing, spec.depth + 2);  // patch embed, one attention per block, head
  EXPECT_EQ(row_steps, 1 + 9 * spec.depth);  // tokens; ln1 qkv proj add ln2 fc1 gelu fc2 add
  // The middle row stage holds block 0's tail and block 1's ln1 + qkv, in that order.
  const Stage& mid = s.stages[3];
  EXPECT_EQ(s.steps[mid.first].op, StepOp::kProj);
  EXPECT_EQ(s.steps[mid.first].block, 0);
  EXPECT_EQ(s.steps[mid.end - 1].op, StepOp::kQkv);
  EXPECT_EQ(s.steps[mid.end - 1].block, 1);
  // Stages tile the steps in order.
  int next = 0;
  for (const Stage& st : s.stages) {
    EXPECT_EQ(st.first, next);
    next = st.end;
  }
  EXPECT_EQ(next, static_cast<int>(s.steps.size()));
}

TEST(VitSchedule, EveryInputIsWrittenBeforeItIsRead) {
  for (bool dist : {false, true}) {
    RandomVitSpec spec;
    spec.dist = dist;
    const Schedule s = BuildSchedule(MakeRandomVit(spec));
    std::set<Buf> written = {Buf::kImages};
    for (const Step& st : s.steps) {
      EXPECT_TRUE(written.count(st.in)) << StepOpName(st.op) << " reads " << BufName(st.in)
                                        << " before any step wrote it";
      written.insert(st.out);
    }
    EXPECT_EQ(s.steps.back().out, Buf::kLogits);
    // The stepping ranges partition the steps: embed, blocks in order, head.
    ASSERT_EQ(s.blocks.size(), static_cast<size_t>(spec.depth));
    EXPECT_EQ(s.embed.first, 0);
    int next = s.embed.end;
    for (size_t b = 0; b < s.blocks.size(); ++b) {
      EXPECT_EQ(s.blocks[b].first, next);
      for (int i = s.blocks[b].first; i < s.blocks[b].end; ++i) {
        EXPECT_EQ(s.steps[i].block, static_cast<int>(b));
      }
      next = s.blocks[b].end;
    }
    EXPECT_EQ(s.head.first, next);
    EXPECT_EQ(s.head.end, static_cast<int>(s.steps.size()));
  }
}

// Records (tap, block) of every whole-tensor tap (per-head taps have image >= 0 and are left out).
class TapOrder : public Fp32Observer {
 public:
  void OnTensor(const TapInfo& info, const float*, int, int) override {
    if (info.image < 0) seen.emplace_back(info.tap, info.block);
  }
  std::vector<std::pair<TapPoint, int>> seen;
};

bool PerHead(TapPoint t) {
  return t == TapPoint::kQ || t == TapPoint::kK || t == TapPoint::kV || t == TapPoint::kAttnProbs;
}

TEST(VitSchedule, Fp32ExecutorReportsTapsInScheduleOrder) {
  for (int variant = 0; variant < 3; ++variant) {
    RandomVitSpec spec;
    spec.depth = 2;
    spec.dist = variant == 1;
    spec.mean_pool = variant == 2;
    spec.seed = 40 + variant;
    const VitModel m = MakeRandomVit(spec);
    const Schedule s = BuildSchedule(m);
    std::vector<std::pair<TapPoint, int>> want;
    for (const Step& st : s.steps) {
      for (TapPoint t : st.inner_taps) {
        if (!PerHead(t)) want.emplace_back(t, st.block);
      }
      if (st.has_tap) want.emplace_back(st.tap, st.block);
    }
    ASSERT_GT(want.size(), static_cast<size_t>(10 * spec.depth));
    ExecutorOptions o;
    o.max_batch = 2;
    o.num_threads = 2;
    ExecutorFp32 exec(m, o);
    TapOrder obs;
    exec.SetObserver(&obs);
    const std::vector<float> images = RandomImages(m, 2, 5);
    std::vector<float> logits(2 * static_cast<size_t>(m.num_classes()));
    exec.Run(images.data(), 2, logits.data());
    EXPECT_EQ(obs.seen, want) << DescribeSchedule(s);
  }
}

}  // namespace
}  // namespace adalog
