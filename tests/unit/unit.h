/* Shared includes for cmocka unit tests. Each tests/unit/test_<module>.c is one binary. */
#ifndef HUB_TESTS_UNIT_H
#define HUB_TESTS_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>
#endif
