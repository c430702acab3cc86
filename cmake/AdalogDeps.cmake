# Finds every third-party dependency once. All come from Debian's apt (see scripts/setup.sh).
find_package(OpenMP REQUIRED)
find_package(Threads REQUIRED)
if(NOT ADALOG_BUILD_FUZZ)
  # oneDNN's CMake config requires OpenCL (Debian builds it with the GPU runtime).
  find_package(dnnl REQUIRED)
  find_package(Eigen3 REQUIRED NO_MODULE)
endif()
# Protobuf must be found before ONNX, or onnx_proto links to a missing target.
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED)
# Image decoding (runtime/data/image_decode.cc): libjpeg-turbo and libpng.
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)
if(ADALOG_BUILD_TESTS AND NOT ADALOG_BUILD_FUZZ)
  find_package(GTest REQUIRED)
endif()
if(ADALOG_BUILD_BENCH AND NOT ADALOG_BUILD_FUZZ)
  find_package(benchmark REQUIRED)
endif()
if(NOT ADALOG_BUILD_FUZZ)
  # JSON output of the CLI (`--json`, `adalog report`).
  find_package(nlohmann_json 3 REQUIRED)
endif()
