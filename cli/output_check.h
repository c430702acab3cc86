// The checks every `adalog` command that writes a file runs on its output path before any long
// work (loading, calibration, inference), so that a mistake costs nothing and loses no file.
#pragma once

#include <string>
#include <vector>

namespace adalog::cli {

struct NamedPath {
  std::string option;  // how the command line named it: "MODEL", "--calib", "--input"
  std::string path;
};

// Throws, naming the output as the user wrote it:
//  - UsageError (exit 2) when the output is the same file as one of `inputs`: same device and inode
//    after following symbolic links, so another spelling of the path ("./x.npy"), a hard link and
//    a symbolic link to an input are all refused (a string comparison missed them).
//  - adalog::Error (exit 1) when the output exists and is not a regular file (directory, FIFO,
//    socket, device: runtime/atomic_write.h), when its directory does not exist, or when no new
//    file can be created there (checked with a probe file, removed at once).
// Paths that do not exist are compared as spelled once made absolute and normalized, so
// `--input x.npy --output ./x.npy` is refused even before x.npy exists.
void CheckOutputPath(const NamedPath& output, const std::vector<NamedPath>& inputs, const std::string& command);

}  // namespace adalog::cli
