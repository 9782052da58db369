// Minimal checks for the C++ unit tests: no framework, never compiled out by NDEBUG.
#pragma once
#include <stdio.h>
#include <stdlib.h>

static int g_failures = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                        \
    }                                                                      \
  } while (0)
#define CHECK_EQ(a, b) CHECK((a) == (b))
#define TEST_MAIN_END(name)                                               \
  do {                                                                     \
    printf("%s: %s (%d failures)\n", name, g_failures ? "FAILED" : "ok", g_failures); \
    return g_failures ? 1 : 0;                                             \
  } while (0)
