# Finds the design card's libraries (Debian packages) and libcurl, and
# exposes each as an imported target:
#   PkgConfig::PISTACHE  libpistache-dev
#   RocksDB::rocksdb     librocksdb-dev
#   gflags::gflags       libgflags-dev
#   glog::glog           libgoogle-glog-dev
#   GTest::gtest         libgtest-dev
#   CURL::libcurl        libcurl4-openssl-dev (peer pulls, see third_party/)
#   rapidjson            rapidjson-dev (header only)

find_package(PkgConfig REQUIRED)
pkg_check_modules(PISTACHE REQUIRED IMPORTED_TARGET libpistache)
find_package(RocksDB CONFIG REQUIRED)
find_package(gflags CONFIG REQUIRED)
find_package(glog CONFIG REQUIRED)
find_package(CURL REQUIRED)
find_package(Threads REQUIRED)
find_package(RapidJSON CONFIG QUIET)
find_path(RAPIDJSON_INCLUDE_DIR rapidjson/document.h REQUIRED)
add_library(rapidjson INTERFACE)
target_include_directories(rapidjson SYSTEM INTERFACE ${RAPIDJSON_INCLUDE_DIR})

if(DIST_COUNTER_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
