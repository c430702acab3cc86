// Compile-time checks of the rounding contract (the definitions are inline in rounding.h).
#include "quant/rounding.h"

#include <cfenv>

namespace adalog {
// FE_TONEAREST is the only rounding mode adalog runs under; nothing here calls fesetround.
static_assert(FE_TONEAREST != FE_UPWARD, "platform rounding modes");
}  // namespace adalog
