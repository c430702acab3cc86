// ImageSource: one reader for .npy images (+ labels) and image folders, loading by range or index.
#include "runtime/data/image_source.h"

#include <algorithm>
#include <random>
#include <sstream>

#include "quant/error.h"

namespace adalog {

bool IsNpyPath(const std::string& path) {
  const std::string suffix = ".npy";
  return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << "]";
  return os.str();
}

ImageSource ImageSource::Open(const std::string& path, const ImageSourceOptions& options) {
  return IsNpyPath(path) ? OpenNpy(path, options) : OpenFolder(path, options);
}

ImageSource ImageSource::OpenNpy(const std::string& path, const ImageSourceOptions& options) {
  ImageSource s;
  s.path_ = path;
  s.what_ = options.what;
  s.is_npy_ = true;
  if (options.labels.empty()) {
    s.npy_ = ReadNpyFloat32(path);
  } else {
    NpyDataset d = ReadNpyDataset(path, options.labels, options.num_classes);
    s.npy_ = std::move(d.images);
    s.labels_ = std::move(d.labels);
  }
  ADALOG_CHECK(s.npy_.shape.size() == 4, path, ": ", s.what_, " must be float32 [N,C,H,W], got shape ",
               ShapeString(s.npy_.shape));
  return s;
}

ImageSource ImageSource::OpenFolder(const std::string& root, const ImageSourceOptions& options) {
  ImageSource s;
  s.path_ = root;
  s.what_ = options.what;
  s.is_npy_ = false;
  s.pre_ = options.preprocess;
  ImageFolderScanOptions scan;
  scan.expected_classes = options.num_classes;
  scan.allow_flat = options.allow_flat;
  scan.strict = options.strict;
  s.folder_ = ScanImageFolder(root, scan);
  return s;
}

std::string ImageSource::skipped_summary() const { return is_npy_ ? std::string() : DescribeSkipped(folder_); }

int64_t ImageSource::size() const {
  return is_npy_ ? npy_.shape[0] : static_cast<int64_t>(folder_.items.size());
}

std::vector<int64_t> ImageSource::image_shape() const {
  if (is_npy_) return {npy_.shape[1], npy_.shape[2], npy_.shape[3]};
  return {3, pre_.crop, pre_.crop};
}

int64_t ImageSource::image_floats() const {
  const std::vector<int64_t> s = image_shape();
  return s[0] * s[1] * s[2];
}

void ImageSource::CheckNotEmpty() const {
  if (is_npy_) ADALOG_CHECK(npy_.shape[0] >= 1, path_, ": no ", what_, " (shape ", ShapeString(npy_.shape), ")");
}

const NpyFloatArray& ImageSource::npy() const {
  ADALOG_CHECK(is_npy_, path_, ": an image folder has no .npy array");
  return npy_;
}

void ImageSource::Load(int64_t begin, int64_t count, float* images, int64_t* labels) const {
  ADALOG_CHECK(begin >= 0 && count >= 0 && begin <= size() && count <= size() - begin, path_, ": images [",
               begin, ", ", begin + count, ") outside 0..", size());
  ADALOG_CHECK(labels == nullptr || has_labels(), path_, ": no labels to load");
  if (is_npy_) {
    const int64_t per = image_floats();
    std::copy_n(npy_.data.data() + begin * per, count * per, images);
    if (labels != nullptr) std::copy_n(labels_.data() + begin, count, labels);
    return;
  }
  if (labels != nullptr) {
    LoadImageBatch(folder_, static_cast<size_t>(begin), static_cast<size_t>(count), pre_, images, labels);
  } else {
    const int64_t per = image_floats();
    for (int64_t i = 0; i < count; ++i)
      LoadImageChw(folder_.items[static_cast<size_t>(begin + i)].path, pre_, images + i * per);
  }
}

void ImageSource::LoadLabels(int64_t begin, int64_t count, int64_t* labels) const {
  ADALOG_CHECK(begin >= 0 && count >= 0 && begin <= size() && count <= size() - begin, path_, ": labels [",
               begin, ", ", begin + count, ") outside 0..", size());
  ADALOG_CHECK(has_labels(), path_, ": no labels to load");
  for (int64_t i = 0; i < count; ++i)
    labels[i] = is_npy_ ? labels_[static_cast<size_t>(begin + i)] : folder_.items[static_cast<size_t>(begin + i)].label;
}

void ImageSource::LoadIndices(const std::vector<int64_t>& indices, float* images) const {
  const int64_t per = image_floats();
  for (size_t i = 0; i < indices.size(); ++i) {
    ADALOG_CHECK(indices[i] >= 0 && indices[i] < size(), path_, ": image index ", indices[i], " outside 0..",
                 size() - 1);
    if (is_npy_) {
      std::copy_n(npy_.data.data() + indices[i] * per, per, images + static_cast<int64_t>(i) * per);
    } else {
      LoadImageChw(folder_.items[static_cast<size_t>(indices[i])].path, pre_, images + static_cast<int64_t>(i) * per);
    }
  }
}

std::vector<float> SyntheticImages(const std::vector<int64_t>& shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> images(static_cast<size_t>(n));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (float& v : images) v = normal(rng);
  return images;
}

}  // namespace adalog
