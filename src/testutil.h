/* testutil.h - what the unit tests share: a scratch directory per test. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Makes a fresh directory under $TMPDIR named after @name; fails the test
 * when it cannot. (transfer full) */
char *rr_test_tmpdir_new (const char *name);
/* Removes @dir and everything below it (symlinks are not followed), frees
 * it. NULL is a no-op. */
void rr_test_tmpdir_free (char *dir);

G_END_DECLS
