# Cross-compile the host kernel library for Jetson (aarch64) with Debian's cross compiler
# (apt-get install g++-aarch64-linux-gnu). `edgeperc bundle create --target <jetson>` runs:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=kernels/cmake/aarch64-linux-gnu.cmake -DEDGEPERC_CUDA=OFF
#   cmake --build build-aarch64 --target edgeperc_kernels_host
# The CUDA library and the TensorRT plugin are not cross-built: they need aarch64 CUDA libraries
# (JetPack's cross-compilation packages) to link; build them on the device.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)   # build tools (python for tests) run on the host
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Orin's Cortex-A78AE: armv8.2-a. No -march=native when cross-compiling.
set(CMAKE_CXX_FLAGS_INIT "-march=armv8.2-a")
