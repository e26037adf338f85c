/* fuzz.h - what the fuzzing harnesses (src/NAME_fuzz.c) share.
 *
 * Each harness defines the two libFuzzer entry points. Built with
 * --enable-fuzzing (clang), libFuzzer supplies main(); otherwise
 * fuzz_replay.c does, and runs the harness once over each file it is given:
 * that is how `make check` replays the seed corpora and every crash fixture
 * in testdata/fuzz/ as regression tests.
 *
 * A harness checks invariants the code promises (byte-identical output when
 * nothing changes, idempotent rewrites, mbox slices that tile the file...)
 * with FUZZ_CHECK, which aborts: libFuzzer then keeps the input as a crash. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                     \
  do                                                                         \
    {                                                                        \
      if (!(cond))                                                           \
        {                                                                    \
          fprintf (stderr, "%s:%d: invariant failed: %s\n", __FILE__,        \
                   __LINE__, #cond);                                         \
          abort ();                                                          \
        }                                                                    \
    }                                                                        \
  while (0)
