// Model input images from a file or folder: a float32 [N,C,H,W] .npy (used as given, already
// preprocessed, optionally with a labels .npy) or an image folder root/<class>/<image>, or a flat
// root/<image> where labels are not needed (decoded and preprocessed when loaded). The one loader behind `adalog run`, `eval`, `quantize` (through
// search/calibration_set.h) and the synthetic images of `bench`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/image_folder.h"
#include "runtime/data/npy.h"

namespace adalog {

// True when `path` names an .npy file (by its suffix); anything else is an image folder.
bool IsNpyPath(const std::string& path);

// "[a,b,c]", as error messages print shapes.
std::string ShapeString(const std::vector<int64_t>& shape);

struct ImageSourceOptions {
  // .npy only: a 1-D int64/int32 labels .npy. Empty: no labels. With labels the pair is read by
  // ReadNpyDataset (counts agree, labels in [0, num_classes), images finite).
  std::string labels;
  // > 0: labels (an .npy's, or a folder's class count) must fit exactly this many classes.
  int num_classes = 0;
  // Names the images in the .npy rank error: "<path>: <what> must be float32 [N,C,H,W], ...".
  std::string what = "images";
  // Folders only: how each image is decoded into [3][crop][crop].
  ImagePreprocessOptions preprocess;
  // Folders only: a flat root/<image> folder is accepted (no labels: has_labels() is false).
  bool allow_flat = false;
  // Folders only: any skipped entry is an error (ImageFolderScanOptions::strict).
  bool strict = false;
};

class ImageSource {
 public:
  // Opens `path` by its suffix (IsNpyPath). An .npy is read whole and must have rank 4 (with
  // labels: ReadNpyDataset's checks first); a folder is scanned (ScanImageFolder, with
  // options.num_classes, allow_flat, strict) and its images are decoded in Load. Throws adalog::Error naming `path`.
  static ImageSource Open(const std::string& path, const ImageSourceOptions& options = {});
  // The same with the kind given rather than taken from the suffix.
  static ImageSource OpenNpy(const std::string& path, const ImageSourceOptions& options = {});
  static ImageSource OpenFolder(const std::string& root, const ImageSourceOptions& options = {});

  const std::string& path() const { return path_; }
  bool is_npy() const { return is_npy_; }
  int64_t size() const;  // images available
  // [C, H, W] of every image: the .npy's, or 3 x crop x crop for a folder.
  std::vector<int64_t> image_shape() const;
  int64_t image_floats() const;  // C * H * W
  // An .npy with labels, or a folder with class sub-folders (its class indices).
  bool has_labels() const { return is_npy_ ? !labels_.empty() : !folder_.flat; }
  // Folders: DescribeSkipped of the scan (empty when nothing was skipped); .npy: empty.
  std::string skipped_summary() const;

  // Throws "<path>: no <what> (shape [...])" when an .npy holds no images.
  void CheckNotEmpty() const;

  // .npy only: the whole array [N][C][H][W] and its shape (for checks and zero-copy runs).
  const NpyFloatArray& npy() const;

  // Images [begin, begin + count) into images[count][C][H][W] (an .npy: copied; a folder:
  // decoded and preprocessed), and their labels into labels[count] when labels != nullptr
  // (which needs has_labels()).
  void Load(int64_t begin, int64_t count, float* images, int64_t* labels = nullptr) const;
  // Only the labels of images [begin, begin + count) (needs has_labels()).
  void LoadLabels(int64_t begin, int64_t count, int64_t* labels) const;
  // The images at `indices` (each in [0, size())), in that order.
  void LoadIndices(const std::vector<int64_t>& indices, float* images) const;

 private:
  std::string path_;
  std::string what_;
  bool is_npy_ = true;
  NpyFloatArray npy_;
  std::vector<int64_t> labels_;  // .npy labels
  ImageFolder folder_;
  ImagePreprocessOptions pre_;
};

// Images float32 `shape` (e.g. {B, C, H, W}) of standard normal values from mt19937(seed): the
// synthetic input of `adalog bench`.
std::vector<float> SyntheticImages(const std::vector<int64_t>& shape, uint32_t seed);

}  // namespace adalog
