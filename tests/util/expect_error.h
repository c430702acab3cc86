// GoogleTest helper: expect adalog::Error whose message contains a substring.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "quant/error.h"

namespace adalog::test {

template <typename F>
void ExpectErrorContaining(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no adalog::Error thrown; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
  }
}

}  // namespace adalog::test
