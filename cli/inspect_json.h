// `adalog inspect --json`: a loaded model (structure, and for a quantized file every quantizer)
// as one JSON object; schema in cli/README.md.
#pragma once

#include "cli/json_out.h"
#include "runtime/adalog_runtime.h"

namespace adalog::cli {

Json InspectJson(const LoadedModel& loaded);

}  // namespace adalog::cli
