// ImageNet-style image folders (root/<class>/<image>) and evaluation preprocessing: decode
// (JPEG/PNG/BMP/PNM, runtime/data/image_decode.h), resize the shorter side (bilinear, optional
// antialias), centre crop, scale to [0,1], normalise per channel. Output is CHW float32, 3 channels (grayscale is
// replicated, alpha dropped).
//
// Defaults follow timm/torchvision eval: resize_shorter = floor(crop / 0.875), mean
// (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225). Resampling is done in float (no uint8 rounding
// between the passes), so values can differ from PIL by up to ~1/255 before normalisation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog {

struct ImagePreprocessOptions {
  int crop = 224;            // output is crop x crop
  int resize_shorter = 0;    // 0: floor(crop / 0.875)
  bool antialias = true;     // widen the bilinear kernel when downscaling (PIL / torchvision)
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float std[3] = {0.229f, 0.224f, 0.225f};
};

// Options matching a model: crop = its image size, resize/mean/std from model.preprocess.
ImagePreprocessOptions PreprocessOptionsFor(const VitModel& model);

struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;  // sorted sub-folder names; label = index
  struct Item {
    std::string path;
    int label;
  };
  std::vector<Item> items;  // sorted by class, then file name
};

// Lists root/<class>/<file> for files ending in .jpg/.jpeg/.png/.bmp/.ppm/.pgm (any case).
// expected_classes > 0: the number of class folders must equal it (else adalog::Error, e.g.
// a dataset with 10 classes for a 1000-class model). Empty folders and a missing root are errors.
ImageFolder ScanImageFolder(const std::string& root, int expected_classes = 0);

// Decodes and preprocesses one image into out[3][crop][crop]. Throws adalog::Error naming the
// file when it cannot be read or decoded.
void LoadImageChw(const std::string& path, const ImagePreprocessOptions& opt, float* out);

// Preprocesses already decoded 8-bit pixels (HWC, `channels` 1..4) into out[3][crop][crop].
void PreprocessPixels(const uint8_t* pixels, int width, int height, int channels,
                      const ImagePreprocessOptions& opt, float* out);

// Loads items [begin, begin + count) into images[count][3][crop][crop] and labels[count].
void LoadImageBatch(const ImageFolder& folder, size_t begin, size_t count,
                    const ImagePreprocessOptions& opt, float* images, int64_t* labels);

}  // namespace adalog
