// The shared library's one translation unit of its own: libadalog.so's code comes whole from the
// runtime and quant archives (package/CMakeLists.txt); adalog.map decides what it exports.
#include "adalog/adalog.h"
