// adalog::Error: the one exception type of the library (public, installed as <adalog/error.h>).
#pragma once

#include <stdexcept>
#include <string>

namespace adalog {

// Every failure the library reports is an adalog::Error whose what() names the culprit (file,
// op, tensor, shape, option): unreadable or malformed model files, invalid options, inputs of the
// wrong shape or with NaN/Inf, out of memory while allocating a workspace. It derives from
// std::runtime_error, so a caller that catches std::exception sees it too.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace adalog
