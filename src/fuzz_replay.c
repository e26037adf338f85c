/* fuzz_replay.c - main() for a fuzzing harness built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once over each file named on the command line, or
 * over each file (sorted by name) in a directory named there, as libFuzzer
 * does when given files. Each input gets a buffer of exactly its size, so
 * that AddressSanitizer sees any read past its end (a NUL-terminated copy
 * would hide one).
 *
 * Exit status 0 when every input ran; 2 when one could not be read. A
 * harness whose invariant fails aborts, naming the file on stderr first. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "fuzz.h"

static int
run_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;
  uint8_t *exact;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      fprintf (stderr, "fuzz_replay: %s\n", error->message);
      return 2;
    }
  fprintf (stderr, "fuzz_replay: %s (%" G_GSIZE_FORMAT " bytes)\n", path, len);
  exact = g_malloc (len ? len : 1);
  memcpy (exact, contents, len);
  LLVMFuzzerTestOneInput (exact, len);
  g_free (exact);
  return 0;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
run_dir (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  int status = 0;

  if (d == NULL)
    {
      fprintf (stderr, "fuzz_replay: %s\n", error->message);
      return 2;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_build_filename (dir, name, NULL));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    if (!g_file_test (names->pdata[i], G_FILE_TEST_IS_DIR))
      status |= run_file (names->pdata[i]);
  return status;
}

int
main (int argc, char **argv)
{
  int status = 0;

  LLVMFuzzerInitialize (&argc, &argv);
  if (argc < 2)
    {
      fprintf (stderr, "usage: %s FILE|DIR...\n", argv[0]);
      return 2;
    }
  for (int i = 1; i < argc; i++)
    status |= g_file_test (argv[i], G_FILE_TEST_IS_DIR) ? run_dir (argv[i])
                                                        : run_file (argv[i]);
  return status;
}
