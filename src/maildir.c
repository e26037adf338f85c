/* maildir.c - Maildir walking and in-place replacement.
 *
 * A replaced message is written whole under tmp/, fsynced, then renamed onto
 * its own name in new/ or cur/: rename is atomic, so a reader sees the old
 * file or the new one. When Dovecot-style size fields in the name change,
 * the new name is published first and the old one removed after: a crash
 * between the two leaves both, and the next run rewrites the old one to the
 * same new name (rename replaces it), so a rerun ends with one copy. */
#include "config.h"

#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"

#define TMP_PREFIX "reroute."

static gboolean
is_dir (const char *path)
{
  struct stat st;

  return lstat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static gboolean
has_sub (const char *dir, const char *sub)
{
  g_autofree char *p = g_build_filename (dir, sub, NULL);

  return is_dir (p);
}

gboolean
rr_maildir_is_maildir (const char *path)
{
  return has_sub (path, "cur") && has_sub (path, "new");
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

typedef struct {
  RrMaildirFunc func, on_error, on_dir;
  gpointer data;
} Walk;

/* A directory is read in passes of at most this many names, the smallest
 * after the last pass's, so memory stays flat however many messages it
 * holds; a huge directory is read at most WALK_PASSES more times, each pass
 * then taking a larger share. */
#define WALK_BATCH 8192
#define WALK_PASSES 16

static guint walk_batch = WALK_BATCH;

void
rr_maildir_set_walk_batch (guint names)
{
  walk_batch = names ? names : WALK_BATCH;
}

static void
heap_swap (GPtrArray *h, guint i, guint j)
{
  gpointer t = h->pdata[i];

  h->pdata[i] = h->pdata[j];
  h->pdata[j] = t;
}

/* A max-heap of names: the largest kept name is at the root. */
static void
heap_sift_down (GPtrArray *h, guint i)
{
  for (;;)
    {
      guint l = 2 * i + 1, r = l + 1, top = i;
      if (l < h->len && strcmp (h->pdata[l], h->pdata[top]) > 0)
        top = l;
      if (r < h->len && strcmp (h->pdata[r], h->pdata[top]) > 0)
        top = r;
      if (top == i)
        return;
      heap_swap (h, i, top);
      i = top;
    }
}

/* Keeps the @limit smallest of the names offered to @h. */
static void
heap_offer (GPtrArray *h, guint limit, const char *name)
{
  guint i;

  if (h->len == limit)
    {
      if (strcmp (name, h->pdata[0]) >= 0)
        return;
      g_free (h->pdata[0]);
      h->pdata[0] = g_strdup (name);
      heap_sift_down (h, 0);
      return;
    }
  g_ptr_array_add (h, g_strdup (name));
  for (i = h->len - 1; i > 0 && strcmp (h->pdata[(i - 1) / 2], h->pdata[i]) < 0; i = (i - 1) / 2)
    heap_swap (h, i, (i - 1) / 2);
}

struct _RrMaildirDir {
  int fd;
  GHashTable *made;  /* names this walk gave rewritten messages here */
};

static void
dir_clear (gpointer p)
{
  RrMaildirDir *d = p;

  close (d->fd);
  g_hash_table_unref (d->made);
}

RrMaildirDir *
rr_maildir_dir_ref (RrMaildirDir *dir)
{
  return g_atomic_rc_box_acquire (dir);
}

void
rr_maildir_dir_unref (RrMaildirDir *dir)
{
  if (dir)
    g_atomic_rc_box_release_full (dir, dir_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrMaildirDir, rr_maildir_dir_unref)

/* NULL with errno set when @path cannot be opened as a directory. */
static RrMaildirDir *
dir_open (const char *path)
{
  int fd = rr_fs_open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  RrMaildirDir *d;

  if (fd < 0)
    return NULL;
  d = g_atomic_rc_box_new0 (RrMaildirDir);
  d->fd = fd;
  d->made = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return d;
}

int
rr_maildir_open (const RrMaildirEntry *e, int flags)
{
  return e->dir ? openat (e->dir->fd, e->name, flags) : open (e->path, flags);
}

/* The @limit smallest message names of @d after @last (all, when NULL)
 * that this walk did not make, sorted; @seen counts the names after @last.
 * NULL with errno set when @d cannot be read. */
static GPtrArray *
list_after (RrMaildirDir *d, const char *last, guint limit, guint *seen)
{
  GPtrArray *names;
  int fd = openat (d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = fd < 0 ? NULL : fdopendir (fd);
  struct dirent *de;

  if (dir == NULL)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      errno = saved;
      return NULL;
    }
  names = g_ptr_array_new_with_free_func (g_free);
  *seen = 0;
  while ((de = readdir (dir)) != NULL)
    if (de->d_name[0] != '.' && (last == NULL || strcmp (de->d_name, last) > 0)
        && !g_hash_table_contains (d->made, de->d_name))
      {
        heap_offer (names, limit, de->d_name);
        (*seen)++;
      }
  closedir (dir);
  /* Sorted, so runs and reports are reproducible. */
  g_ptr_array_sort (names, compare_names);
  return names;
}

static gboolean
folder_error (const char *folder, const char *sub, const char *dir, const Walk *w,
              GError **error)
{
  RrMaildirEntry e = { folder, sub, "", dir, NULL };
  g_autoptr (GError) local = NULL;

  rr_fs_set_error (&local, "cannot read folder", dir);
  return w->on_error (&e, w->data, &local)
         || (g_propagate_error (error, g_steal_pointer (&local)), FALSE);
}

static gboolean
walk_sub (const char *folder, const char *sub, const Walk *w, GError **error)
{
  g_autofree char *path = g_build_filename (folder, sub, NULL);
  g_autofree char *last = NULL;
  RrMaildirEntry at = { folder, sub, NULL, path, NULL };
  g_autoptr (RrMaildirDir) d = NULL;
  guint limit = walk_batch, seen;

  for (;;)
    {
      g_autoptr (GPtrArray) names = NULL;
      /* Before each pass the caller finishes the last one: its renames are
       * then known, and a message moved to cur/ meanwhile is met there. */
      if (w->on_dir && !w->on_dir (&at, w->data, error))
        return FALSE;
      if (d == NULL && (d = dir_open (path)) == NULL)
        return errno == ENOENT || folder_error (folder, sub, path, w, error);
      if ((names = list_after (d, last, limit, &seen)) == NULL)
        return folder_error (folder, sub, path, w, error);
      for (guint i = 0; i < names->len; i++)
        {
          g_autofree char *file = g_build_filename (path, names->pdata[i], NULL);
          RrMaildirEntry e = { folder, sub, names->pdata[i], file, d };
          if (!w->func (&e, w->data, error))
            return FALSE;
        }
      if (names->len < limit)
        return TRUE;
      g_free (last);
      last = g_strdup (names->pdata[names->len - 1]);
      limit = MAX (limit, seen / WALK_PASSES);
    }
}

static gboolean
walk_folder (const char *folder, const Walk *w, GError **error)
{
  return walk_sub (folder, "new", w, error) && walk_sub (folder, "cur", w, error);
}

gboolean
rr_maildir_walk (const char *root, gboolean recurse, RrMaildirFunc func,
                 RrMaildirFunc on_error, RrMaildirFunc on_dir, gpointer data, GError **error)
{
  g_autoptr (GPtrArray) subs = g_ptr_array_new_with_free_func (g_free);
  Walk w = { func, on_error, on_dir, data };
  DIR *d;
  struct dirent *de;

  if (!walk_folder (root, &w, error))
    return FALSE;
  if (!recurse || (d = opendir (root)) == NULL)
    return TRUE;
  while ((de = readdir (d)) != NULL)
    if (de->d_name[0] == '.' && strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      g_ptr_array_add (subs, g_build_filename (root, de->d_name, NULL));
  closedir (d);
  g_ptr_array_sort (subs, compare_names);
  for (guint i = 0; i < subs->len; i++)
    if (rr_maildir_is_maildir (subs->pdata[i])
        && !walk_folder (subs->pdata[i], &w, error))
      return FALSE;
  return TRUE;
}

/* The info part starts at the first ':' (or '!' or ';', as some MUAs write
 * on file systems where ':' is not allowed). */
static gsize
base_length (const char *name)
{
  return strcspn (name, ":!;");
}

static void
set_size_field (GString *base, const char *field, gsize value)
{
  char *at = strstr (base->str, field);
  gsize start, end;

  if (at == NULL)
    return;
  start = at - base->str + strlen (field);
  end = start;
  while (end < base->len && g_ascii_isdigit (base->str[end]))
    end++;
  if (end == start)
    return;
  char digits[32];

  g_snprintf (digits, sizeof digits, "%" G_GSIZE_FORMAT, value);
  g_string_erase (base, start, end - start);
  g_string_insert (base, start, digits);
}

char *
rr_maildir_name_with_sizes (const char *name, gsize size, gsize wsize)
{
  gsize n = base_length (name);
  GString *base = g_string_new_len (name, n);

  set_size_field (base, ",S=", size);
  set_size_field (base, ",W=", wsize);
  g_string_append (base, name + n);
  return g_string_free (base, FALSE);
}

/* Whether @name, "reroute.<time>.M<usec>P<pid>Q<n>.<host>", was left by a
 * process of this host that no longer runs. */
static gboolean
is_leftover (const char *name, const char *host)
{
  const char *p = strstr (name, "P"), *q;
  long pid;

  if (!g_str_has_prefix (name, TMP_PREFIX) || p == NULL)
    return FALSE;
  pid = strtol (p + 1, NULL, 10);
  q = strchr (p, '.');
  if (pid <= 0 || q == NULL || strcmp (q + 1, host) != 0)
    return FALSE;
  return kill ((pid_t) pid, 0) != 0 && errno == ESRCH;
}

void
rr_maildir_clean_tmp (const char *folder)
{
  g_autofree char *tmp = g_build_filename (folder, "tmp", NULL);
  const char *host = rr_fs_hostname ();
  DIR *d = opendir (tmp);
  struct dirent *de;

  while (d && (de = readdir (d)) != NULL)
    if (is_leftover (de->d_name, host))
      {
        g_autofree char *path = g_build_filename (tmp, de->d_name, NULL);
        rr_fs_unlink (path);
      }
  if (d)
    closedir (d);
}

static gboolean
ensure_tmp (const char *tmp, GError **error)
{
  if (rr_fs_mkdir (tmp, 0700) == 0 || errno == EEXIST)
    return TRUE;
  return rr_fs_set_error (error, "cannot create", tmp);
}

/* Writes @iov and counts the sizes Dovecot puts in names: bytes, and bytes
 * with every bare LF counted as CRLF. */
static gboolean
write_counted (RrNewFile *nf, const struct iovec *iov, int iovcnt, gsize *size,
               gsize *wsize, GError **error)
{
  char prev = 0;

  *size = *wsize = 0;
  for (int i = 0; i < iovcnt; i++)
    {
      const char *p = iov[i].iov_base;
      gsize len = iov[i].iov_len;
      if (!rr_new_file_write (nf, p, len, error))
        return FALSE;
      for (gsize k = 0; k < len; k++)
        *wsize += p[k] == '\n' && (k > 0 ? p[k - 1] : prev) != '\r';
      if (len > 0)
        prev = p[len - 1];
      *size += len;
    }
  *wsize += *size;
  return TRUE;
}

gboolean
rr_maildir_replace (const RrMaildirEntry *e, const struct stat *st,
                    const struct iovec *iov, int iovcnt, GError **error)
{
  g_autofree char *tmp = g_build_filename (e->folder, "tmp", NULL);
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  g_autoptr (RrNewFile) nf = NULL;
  gsize size, wsize;

  if (!ensure_tmp (tmp, error) || (nf = rr_new_file_create (tmp, TMP_PREFIX, error)) == NULL
      || !write_counted (nf, iov, iovcnt, &size, &wsize, error)
      || !rr_new_file_finish (nf, st, error))
    return FALSE;
  name = rr_maildir_name_with_sizes (e->name, size, wsize);
  path = g_build_filename (e->folder, e->sub, name, NULL);
  if (strcmp (name, e->name) == 0)
    return rr_new_file_rename (nf, path, error);
  /* Under a new name, the old file stays until the new one is durable. When
   * a step fails, the new name is taken back (a cleanup, never faulted), so
   * that the message is not left there twice; a rerun does it again. */
  if (e->dir)  /* the walk may read this directory again: not again */
    g_hash_table_add (e->dir->made, g_strdup (name));
  if (!rr_new_file_rename (nf, path, error))
    {
      if (!g_file_test (rr_new_file_get_path (nf), G_FILE_TEST_EXISTS))
        unlink (path);  /* renamed, but not durable */
      return FALSE;
    }
  if (rr_fs_unlink (e->path) != 0 && errno != ENOENT)
    {
      rr_fs_set_error (error, "cannot remove", e->path);
      unlink (path);
      return FALSE;
    }
  g_free (tmp);
  tmp = g_path_get_dirname (e->path);
  return rr_fs_sync_dir (tmp, error);
}
