// The one exception type that carries a message about untrusted input (ONNX files, model
// files, calibration data, CLI arguments, bad quantizer parameters) up to the CLI.
// Internal invariants use assert(); a thrown adalog::Error always names the culprit
// (op, node, tensor, shape, file) in its message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "adalog/error.h"  // the Error class itself: part of the installed public API

namespace adalog {

namespace detail {
inline void StreamAll(std::ostringstream&) {}
template <typename T, typename... Rest>
void StreamAll(std::ostringstream& os, T&& v, Rest&&... rest) {
  os << std::forward<T>(v);
  StreamAll(os, std::forward<Rest>(rest)...);
}
}  // namespace detail

// Builds a message from its pieces: Fail("node '", name, "': rank ", r, " unsupported").
template <typename... Args>
[[noreturn]] void Fail(Args&&... args) {
  std::ostringstream os;
  detail::StreamAll(os, std::forward<Args>(args)...);
  throw Error(os.str());
}

}  // namespace adalog

// ADALOG_CHECK(cond, pieces...): throws adalog::Error with the pieces when cond is false.
#define ADALOG_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::adalog::Fail(__VA_ARGS__); \
  } while (0)
