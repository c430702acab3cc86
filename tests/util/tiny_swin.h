// The tiny Swin test exports (models/tiny/swin/, written by models/make_swin_tiny.py): their
// folder and the names of the nine Swin V1 exports, shared by the Swin tests.
#pragma once

#include <string>

namespace adalog::testing_util {

inline const std::string kSwinDir = std::string(ADALOG_SOURCE_DIR) + "/models/tiny/swin/";
inline const char* const kSwinV1Exports[] = {
    "tiny_swin_timm_op13_static",  "tiny_swin_timm_op17_dyn",     "tiny_swin_timm_op13_dyn_pad",
    "tiny_swin_timm_op17_static_pad", "tiny_swin_timm3_op17_dyn", "tiny_swin_tv_op13_static",
    "tiny_swin_tv_op17_dyn",       "tiny_swin_tv_op13_dyn_pad",   "tiny_swin_tv_op17_static_pad"};

}  // namespace adalog::testing_util
