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

/* (transfer full) The sorted names in @dir, joined by spaces. */
char *rr_test_listing (const char *dir);
/* Fails the test unless @path holds exactly @want_len bytes of @want_data,
 * naming the first byte that differs. */
void rr_test_assert_file (const char *path, const void *want_data, gsize want_len);

G_END_DECLS
