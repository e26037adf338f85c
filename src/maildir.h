/* maildir.h - walking a Maildir (and its Maildir++ subfolders) and
 * replacing one message file in place by the Maildir protocol.
 *
 * DIAGNOSTICS
 *   rr_maildir_walk() fails (G_IO_ERROR) only when a folder cannot be read;
 *   a file that vanishes between readdir and open is skipped silently (another
 *   MUA moved it). rr_maildir_replace() fails with a G_IO_ERROR from fsutil;
 *   the original file is then untouched and nothing is left in tmp/. */
#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <sys/uio.h>

G_BEGIN_DECLS

/* A directory the walk is reading, shared by the entries met in it: held
 * open, so that its messages are opened by name rather than by path, with
 * the set of names rr_maildir_replace() gave messages there. */
typedef struct _RrMaildirDir RrMaildirDir;

RrMaildirDir *rr_maildir_dir_ref (RrMaildirDir *dir);
void rr_maildir_dir_unref (RrMaildirDir *dir);

/* One message file, as found by the walk (transfer none for the callback). */
typedef struct {
  const char *folder; /* the Maildir or Maildir++ folder */
  const char *sub;    /* "new" or "cur" */
  const char *name;   /* file name */
  const char *path;   /* folder/sub/name */
  RrMaildirDir *dir;  /* the directory as the walk holds it, or NULL */
} RrMaildirEntry;

/* Opens @entry's file with @flags: by name in its directory, or by path. */
int rr_maildir_open (const RrMaildirEntry *entry, int flags);

/* Returns FALSE to stop the walk (the walk then returns FALSE too, with
 * @error as the callback set it). */
typedef gboolean (*RrMaildirFunc) (const RrMaildirEntry *entry, gpointer data,
                                   GError **error);

/* Whether @path is a directory with cur/ and new/ subdirectories. */
gboolean rr_maildir_is_maildir (const char *path);

/* Calls @func for every message in new/ and cur/ of @root, in name order,
 * and, when
 * @recurse, of its Maildir++ subfolders (".Name"). Names starting with '.'
 * are not messages. Errors reading one folder are passed to @on_error
 * and the walk goes on. @on_dir, when not NULL, is called before each
 * new/ or cur/ is read, with the entry's name NULL and its path the
 * directory's: a caller reading ahead finishes the last directory there,
 * so that a message moved from new/ to cur/ meanwhile is met in cur/.
 * A big directory is read in passes of a bounded number of names, @on_dir
 * called before each; a name rr_maildir_replace() gave a message through
 * the entry's directory is not met again. */
gboolean rr_maildir_walk (const char *root, gboolean recurse, RrMaildirFunc func,
                          RrMaildirFunc on_error, RrMaildirFunc on_dir, gpointer data,
                          GError **error);

/* For tests: the names a pass of the walk holds (0: the default, 8192). */
void rr_maildir_set_walk_batch (guint names);

/* The name with its ",S=" and ",W=" fields (if any, before the info part)
 * set to @size and @wsize. (transfer full) */
char *rr_maildir_name_with_sizes (const char *name, gsize size, gsize wsize);

/* Removes from @folder's tmp/ the files a killed reroute run left there:
 * ours by name ("reroute." prefix, this host), and whose PID no longer runs.
 * A file another program is writing there is never touched. */
void rr_maildir_clean_tmp (const char *folder);

/* Replaces @entry's file with the bytes of @iov: written to tmp/ (as
 * "reroute.<unique>"), fsynced,
 * renamed to the same folder and name (size fields updated), the old name
 * removed if the name changed (the new name then added to @entry's
 * directory's set);
 * mode, owner and times copied from @st. */
gboolean rr_maildir_replace (const RrMaildirEntry *entry, const struct stat *st,
                             const struct iovec *iov, int iovcnt, GError **error);

G_END_DECLS
