// tests/catch_main.cc — Catch2's main, compiled once into pacegc_catch_main and shared by every test executable.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
