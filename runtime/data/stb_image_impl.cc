// The one translation unit that compiles stb_image (Debian libstb-dev header), limited to the
// formats the image-folder loader accepts and to a maximum size, since images are untrusted.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#define STBI_MAX_DIMENSIONS (1 << 14)
#define STBI_NO_HDR
#define STBI_NO_LINEAR
// stb's STBI_ASSERTs are consistency checks on the data being decoded (e.g. that a Huffman code
// read from a JPEG is the table's canonical one). With the default assert they abort the process
// in builds with assert() on (the sanitizer and fuzz builds) and vanish under NDEBUG, where a
// malformed file decodes to garbage pixels. Here a failed check is recorded instead, and
// LoadImageChw (image_folder.cc) refuses the image: the same clear error in every build.
// (Found by tests/fuzz/fuzz_image.cc: a JPEG whose AC Huffman code does not match its table.)
namespace adalog::stb_detail {
thread_local bool consistency_failed = false;
}  // namespace adalog::stb_detail
#define STBI_ASSERT(x) ((x) ? (void)0 : (void)(adalog::stb_detail::consistency_failed = true))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wshadow=local"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop
