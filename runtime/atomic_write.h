// Atomic replacement of an output file, shared by the .npy and quantized-model writers.
//
// Contract: WriteFileAtomically leaves `path` either as it was or holding exactly `bytes`. It
// writes a new temporary file beside `path` (created exclusively, never following a link), syncs
// it, and renames it over `path`. Every failure throws adalog::Error whose message names `path`,
// the user's output, and the reason (with the system's error text); the temporary file is removed
// and never named. An existing `path` that is not a regular file (directory, FIFO, socket,
// device) is refused before anything is written: renaming over it would replace the device node
// or FIFO with a regular file.
#pragma once

#include <string>

namespace adalog {

// Throws adalog::Error ("<what> '<path>' exists and is a <kind>, not a regular file ...") when
// `path` exists and is not a regular file after following symbolic links; returns otherwise
// (absent, a regular file, or a dangling link). `what` names the output ("output", "model file").
void CheckRegularOrAbsent(const std::string& path, const std::string& what);

// See the file comment. `what` prefixes every message ("model file", "output").
void WriteFileAtomically(const std::string& path, const std::string& bytes, const std::string& what);

}  // namespace adalog
