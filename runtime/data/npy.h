// .npy files (NumPy format versions 1-3): float32 arrays and int32/int64 label vectors, read with
// full validation (untrusted input) and written atomically (temp file + rename).
//
// Accepted: descr '<f4' (float32), '<f8' (float64) and '<f2' (float16), both converted to float32
// on read; '<i8' (int64), '<i4' (int32, widened to int64) for labels; fortran_order False; a
// shape tuple whose element count matches the payload exactly. Big-endian data and Fortran order
// are refused. Every failure throws adalog::Error naming the file and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adalog {

enum class NpyDtype { kFloat32, kInt32, kInt64, kFloat64, kFloat16 };

struct NpyHeader {
  NpyDtype dtype = NpyDtype::kFloat32;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes from the start of the file to the payload
  int64_t num_elements() const;
};

struct NpyFloatArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
  // What the file held. float16 converts exactly. float64 rounds to nearest; a finite value
  // beyond float32's range becomes +-inf, exactly as IEEE (and numpy's astype) round it: counted in
  // `overflowed`, the first at flat index `first_overflow`. NaN and +-inf carry over as they are,
  // so every consumer treats them as it treats them in float32 data (the CLI's refuse them).
  NpyDtype file_dtype = NpyDtype::kFloat32;
  int64_t overflowed = 0;
  int64_t first_overflow = -1;
};

// Parses and validates the header of the bytes of a whole .npy file, including that the payload
// has exactly num_elements * itemsize bytes. `name` is used in error messages.
NpyHeader ParseNpyHeader(const std::string& bytes, const std::string& name);

// Reads a '<f4', '<f8' or '<f2' array of any rank as float32. ReadNpyFloat32 prints one warning
// line on stderr per file when float64 values overflowed ("adalog: warning: <path>: ..."); the
// parser only reports them in the result.
NpyFloatArray ReadNpyFloat32(const std::string& path);
NpyFloatArray ParseNpyFloat32(const std::string& bytes, const std::string& name);

// Reads a 1-D '<i8' or '<i4' vector (class labels).
std::vector<int64_t> ReadNpyLabels(const std::string& path);
std::vector<int64_t> ParseNpyLabels(const std::string& bytes, const std::string& name);

// Writes version-1.0 files; the target appears complete or not at all.
void WriteNpyFloat32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void WriteNpyInt64(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape);

// Throws adalog::Error naming `what` and the first NaN/inf element: its multi-index when `shape`
// is given (e.g. "[3,0,17,5]"), else its flat index.
void CheckFinite(const float* data, int64_t n, const std::string& what,
                 const std::vector<int64_t>& shape = {});

// Images [N][C][H][W] float32 + labels [N]: checks the counts agree and labels lie in
// [0, num_classes) when num_classes > 0.
struct NpyDataset {
  NpyFloatArray images;
  std::vector<int64_t> labels;
};
NpyDataset ReadNpyDataset(const std::string& images_path, const std::string& labels_path,
                          int num_classes = 0);

}  // namespace adalog
