// The ONNX protobuf for tests that edit a real export (importer errors, preprocessing metadata):
// onnx_pb.h with the macros the build uses, and the test inputs (kTinyDir, ReadFileBytes).
#pragma once

#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/onnx_pb.h>

#include "tests/util/test_files.h"
