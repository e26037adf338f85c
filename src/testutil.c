/* testutil.c - scratch directories for the unit tests. */
#include "config.h"

#include "testutil.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

char *
rr_test_tmpdir_new (const char *name)
{
  g_autofree char *pattern = g_strdup_printf ("rr-%s-XXXXXX", name);
  GError *error = NULL;
  char *dir = g_dir_make_tmp (pattern, &error);

  cr_assert_not_null (dir, "%s", error ? error->message : "");
  return dir;
}

static int
remove_entry (const char *path, const struct stat *sb G_GNUC_UNUSED, int flag G_GNUC_UNUSED,
              struct FTW *ftw G_GNUC_UNUSED)
{
  return remove (path);
}

void
rr_test_tmpdir_free (char *dir)
{
  if (dir)
    nftw (dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  g_free (dir);
}
