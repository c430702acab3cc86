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
// stb's STBI_ASSERTs are internal consistency checks that shipped (NDEBUG) builds compile out.
// Evaluating one is itself undefined for some malformed JPEGs (a shift by 32 at the Huffman check,
// stb_image.h:2115, found by tests/fuzz/fuzz_image.cc under UBSan), and with assert() on it aborted
// the process (found the same way). So they are compiled out in every build: the sanitizer and
// fuzz builds check exactly the decoder that ships, for memory safety.
#define STBI_ASSERT(x) ((void)0)
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
