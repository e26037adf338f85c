/* testutil.c - scratch directories for the unit tests. */
#include "config.h"

#include "testutil.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>

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

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *
rr_test_listing (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  cr_assert_not_null (d, "cannot list %s", dir);
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

void
rr_test_assert_file (const char *path, const void *want_data, gsize want_len)
{
  const char *want = want_data;
  g_autofree char *got = NULL;
  gsize got_len = 0;
  gsize i = 0;

  cr_assert (g_file_get_contents (path, &got, &got_len, NULL), "cannot read %s", path);
  while (i < got_len && i < want_len && got[i] == want[i])
    i++;
  cr_assert (i == got_len && i == want_len,
             "%s: %zu bytes, expected %zu; first difference at byte %zu", path, got_len,
             want_len, i);
}
