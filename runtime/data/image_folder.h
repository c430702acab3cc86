// ImageNet-style image folders (root/<class>/<image>, or a flat root/<image> where no labels are
// needed) and evaluation preprocessing: decode (JPEG/PNG/PNM, runtime/data/image_decode.h), resize
// the shorter side (bilinear, bicubic or nearest as Pillow does it, runtime/preprocess.h), centre
// crop, scale to [0,1], optionally reverse the channels (bgr), normalise per channel. Output is CHW
// float32, 3 channels (grayscale is replicated, alpha dropped).
//
// Defaults follow torchvision eval: resize_shorter = floor(crop / 0.875), bilinear, mean
// (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225). Resampling is done in float (no uint8 rounding
// between the passes), so values differ from Pillow's 8-bit result by up to about 1/255 before
// normalisation (tests/runtime/data_resize_pillow_test.cc measures it against Pillow).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog {

struct ImagePreprocessOptions {
  int crop = 224;            // output is crop x crop
  int resize_shorter = 0;    // 0: floor(crop / 0.875)
  bool antialias = true;     // widen the bilinear/bicubic kernel when downscaling (Pillow)
  Interpolation interpolation = Interpolation::kBilinear;
  ChannelOrder channel_order = ChannelOrder::kRgb;  // bgr: output channel c is decoded channel 2-c
  float mean[3] = {0.485f, 0.456f, 0.406f};  // per output channel
  float std[3] = {0.229f, 0.224f, 0.225f};
};

// Options matching a model: crop = its image size, the rest from model.preprocess.
ImagePreprocessOptions PreprocessOptionsFor(const VitModel& model);
// The same from a Preprocess and a crop size.
ImagePreprocessOptions PreprocessOptionsFrom(const Preprocess& p, int crop);

struct ImageFolderScanOptions {
  // > 0: the number of class folders (empty ones included) must equal it, else adalog::Error
  // (e.g. a dataset with 10 classes for a 1000-class model).
  int expected_classes = 0;
  // True: a root holding images and no sub-folders is read as one unlabelled set (calibration,
  // `adalog run`). False: class sub-folders are required (labels).
  bool allow_flat = false;
  // True: any skipped entry (see ImageFolder::skipped) is an error naming it.
  bool strict = false;
};

struct ImageFolder {
  std::string root;
  bool flat = false;                 // root/<image>: no classes, every label -1
  std::vector<std::string> classes;  // sorted sub-folder names; label = index (empty ones kept)
  struct Item {
    std::string path;
    int label;
  };
  std::vector<Item> items;  // sorted by class, then file name
  // Entries not read, by reason (in this order; zero counts included): "unsupported extension",
  // "empty class folder", "not a regular file" (sub-folders inside a class folder, broken links,
  // devices), "outside the class folders" (files directly in a root that has class folders).
  struct Skipped {
    std::string reason;
    int count = 0;
    std::string example;  // the first one met (sorted order)
  };
  std::vector<Skipped> skipped;
  int skipped_total() const;
};

// Lists root/<class>/<file> (or root/<file> when flat is allowed and root has no sub-folders) for
// files ending in .jpg/.jpeg/.png/.bmp/.ppm/.pgm (any case; BMP is then refused by the decoder
// with a clear error); everything else is counted in `skipped`. A missing root, no class folders
// (unless flat is allowed), a class-count mismatch or no images at all are errors; so is any skip
// under options.strict.
ImageFolder ScanImageFolder(const std::string& root, const ImageFolderScanOptions& options);
// Class sub-folders required.
ImageFolder ScanImageFolder(const std::string& root, int expected_classes = 0);

// One line describing the skipped entries, e.g. "data/: skipped 3 entries: 2 unsupported extension
// (e.g. 'data/a/notes.txt'), 1 empty class folder (e.g. 'data/cls7')"; empty when none was skipped.
std::string DescribeSkipped(const ImageFolder& folder);

// Decodes and preprocesses one image into out[3][crop][crop]. Throws adalog::Error naming the
// file when it cannot be read or decoded.
void LoadImageChw(const std::string& path, const ImagePreprocessOptions& opt, float* out);

// Preprocesses already decoded 8-bit pixels (HWC, `channels` 1..4) into out[3][crop][crop].
void PreprocessPixels(const uint8_t* pixels, int width, int height, int channels,
                      const ImagePreprocessOptions& opt, float* out);

// Loads items [begin, begin + count) into images[count][3][crop][crop] and labels[count] (-1 for
// a flat folder).
void LoadImageBatch(const ImageFolder& folder, size_t begin, size_t count,
                    const ImagePreprocessOptions& opt, float* images, int64_t* labels);

}  // namespace adalog
