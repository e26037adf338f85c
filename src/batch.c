/* batch.c - spool -> message -> route -> rewrite in place -> report.
 *
 * Each spool kind keeps its own safety rule: a Maildir message is replaced
 * by the Maildir protocol on its own (maildir.c); an mbox is rewritten whole
 * into a new file under the MUA/MDA locks and renamed over the old one, and
 * only when at least one message changes. */
#include "config.h"

#include "batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "lock.h"
#include "maildir.h"
#include "mbox.h"
#include "message.h"

G_DEFINE_QUARK (rr-batch-error-quark, rr_batch_error)

typedef struct {
  const RrBatchOptions *opt;
  RrReport *report;
  char *folder; /* the Maildir folder whose tmp/ was last cleaned */
} Batch;

/* Parses and resolves one message. NULL when it is bad data (reported). */
static RrRewrite *
examine (Batch *b, const char *place, const char *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RrMessage) msg = rr_message_new (data, len, &error);
  RrRewrite *rw = msg ? rr_rewrite_new (msg, b->opt->table, &b->opt->rewrite, &error) : NULL;

  rr_report_scanned (b->report, len);
  if (rw == NULL)
    rr_report_skipped (b->report, place, error);
  return rw;
}

static struct iovec *
segments (const RrRewrite *rw, int *n)
{
  struct iovec *iov;

  *n = rr_rewrite_get_n_segments (rw);
  iov = g_new (struct iovec, *n);
  for (int i = 0; i < *n; i++)
    {
      const char *d;
      gsize l;
      rr_rewrite_get_segment (rw, i, &d, &l);
      iov[i].iov_base = (void *) d;
      iov[i].iov_len = l;
    }
  return iov;
}

static gboolean
read_whole (int fd, gsize size, const char *path, char **data, gsize *len, GError **error)
{
  gsize cap = size + 1, used = 0;
  char *buf = g_malloc (cap);

  for (;;)
    {
      ssize_t n = read (fd, buf + used, cap - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_free (buf);
          return rr_fs_set_error (error, "cannot read", path);
        }
      if (n == 0)
        break;
      used += n;
      if (used == cap)
        buf = g_realloc (buf, cap *= 2);
    }
  *data = buf;
  *len = used;
  return TRUE;
}

static void
report_io (Batch *b, const char *place, const char *what)
{
  g_autoptr (GError) error = NULL;

  rr_fs_set_error (&error, what, place);
  rr_report_error (b->report, NULL, error);
}

static void
maildir_rewrite (Batch *b, const RrMaildirEntry *e, const struct stat *st,
                 const RrRewrite *rw)
{
  g_autoptr (GError) error = NULL;
  g_autofree struct iovec *iov = NULL;
  int n;

  iov = segments (rw, &n);
  if (rr_maildir_replace (e, st, iov, n, &error))
    rr_report_rewritten (b->report, e->path, rw);
  else
    rr_report_error (b->report, e->path, error);
}

static gboolean
maildir_message (const RrMaildirEntry *e, gpointer data, GError **error G_GNUC_UNUSED)
{
  Batch *b = data;
  g_autoptr (GError) local = NULL;
  g_autoptr (RrRewrite) rw = NULL;
  g_autofree char *text = NULL;
  struct stat st;
  gsize len = 0;
  int fd = open (e->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0)
    {
      if (errno != ENOENT)  /* gone: another MUA moved it, not an error */
        report_io (b, e->path, "cannot open");
      return TRUE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (&local, RR_BATCH_ERROR, RR_BATCH_ERROR_NOT_SPOOL, "not a regular file");
      rr_report_skipped (b->report, e->path, local);
      close (fd);
      return TRUE;
    }
  if (!read_whole (fd, st.st_size, e->path, &text, &len, &local))
    {
      close (fd);
      rr_report_error (b->report, NULL, local);
      return TRUE;
    }
  close (fd);
  if ((rw = examine (b, e->path, text, len)) == NULL)
    return TRUE;
  if (rr_rewrite_changes (rw))
    {
      if (g_strcmp0 (b->folder, e->folder) != 0)
        {
          g_free (b->folder);
          b->folder = g_strdup (e->folder);
          rr_maildir_clean_tmp (e->folder);
        }
      maildir_rewrite (b, e, &st, rw);
    }
  else
    rr_report_unchanged (b->report);
  return TRUE;
}

static gboolean
maildir_folder_error (const RrMaildirEntry *e G_GNUC_UNUSED, gpointer data, GError **error)
{
  Batch *b = data;

  rr_report_error (b->report, NULL, *error);
  g_clear_error (error);
  return TRUE;
}

static void
run_maildir (Batch *b, const char *path)
{
  g_autoptr (GError) error = NULL;

  if (!rr_maildir_walk (path, b->opt->recurse, maildir_message, maildir_folder_error, b,
                        &error) && error)
    rr_report_error (b->report, path, error);
}

typedef struct {
  Batch *b;
  const char *path;
  int fd;
  struct stat st;
  RrNewFile *out;      /* NULL until the first message changes */
  GPtrArray *changed;  /* places of rewritten messages, reported on commit */
} MboxRun;

static gboolean
copy_prefix (MboxRun *m, guint64 upto, GError **error)
{
  char buf[65536];

  for (guint64 at = 0; at < upto;)
    {
      ssize_t n = pread (m->fd, buf, MIN (sizeof buf, upto - at), at);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = EIO;  /* the file shrank under our lock: refuse */
          return rr_fs_set_error (error, "cannot read", m->path);
        }
      if (!rr_new_file_write (m->out, buf, n, error))
        return FALSE;
      at += n;
    }
  return TRUE;
}

static gboolean
start_output (MboxRun *m, guint64 upto, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (m->path);
  g_autofree char *base = g_path_get_basename (m->path);
  g_autofree char *prefix = g_strdup_printf (".%s.reroute.", base);

  m->out = rr_new_file_create (dir, prefix, error);
  return m->out && copy_prefix (m, upto, error);
}

static gboolean
write_rewrite (RrNewFile *out, const RrRewrite *rw, GError **error)
{
  for (guint i = 0; i < rr_rewrite_get_n_segments (rw); i++)
    {
      const char *d;
      gsize l;
      rr_rewrite_get_segment (rw, i, &d, &l);
      if (!rr_new_file_write (out, d, l, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
mbox_message (MboxRun *m, const RrMboxMessage *msg, GError **error)
{
  g_autofree char *place = g_strdup_printf ("%s at byte %" G_GUINT64_FORMAT, m->path,
                                            msg->offset);
  g_autoptr (RrRewrite) rw = examine (m->b, place, msg->data, msg->len);
  gboolean changed = rw && rr_rewrite_changes (rw);

  if (!changed && rw)
    rr_report_unchanged (m->b->report);
  if (changed && m->out == NULL && !start_output (m, msg->offset, error))
    return FALSE;
  if (changed)
    g_ptr_array_add (m->changed, g_steal_pointer (&place));
  if (m->out == NULL)
    return TRUE;
  return changed ? write_rewrite (m->out, rw, error)
                 : rr_new_file_write (m->out, msg->data, msg->len, error);
}

/* Temporary mboxes of a killed run: we hold the lock, so none is live. */
static void
remove_leftovers (MboxRun *m)
{
  g_autofree char *dir = g_path_get_dirname (m->path);
  g_autofree char *base = g_path_get_basename (m->path);
  g_autofree char *prefix = g_strdup_printf (".%s.reroute.", base);
  DIR *d = opendir (dir);
  struct dirent *de;

  while (d && (de = readdir (d)) != NULL)
    if (g_str_has_prefix (de->d_name, prefix))
      {
        g_autofree char *p = g_build_filename (dir, de->d_name, NULL);
        if (rr_fs_unlink (p) != 0)
          report_io (m->b, p, "cannot remove");
      }
  if (d)
    closedir (d);
}

static gboolean
mbox_pass (MboxRun *m, GError **error)
{
  g_autoptr (RrMbox) mb = rr_mbox_open (m->path, m->fd, error);
  RrMboxMessage msg;
  int got;

  if (mb == NULL)
    return FALSE;
  while ((got = rr_mbox_next (mb, &msg, error)) > 0)
    {
      char *warning;
      while ((warning = rr_mbox_take_warning (mb)) != NULL)
        rr_report_warning (m->b->report, warning), g_free (warning);
      if (!mbox_message (m, &msg, error))
        return FALSE;
    }
  if (got < 0)
    return FALSE;
  return m->out == NULL || (rr_new_file_finish (m->out, &m->st, error)
                            && rr_new_file_rename (m->out, m->path, error));
}

/* The file we locked must still be the one at @path (not replaced while we
 * waited for the lock). */
static gboolean
still_same (MboxRun *m, GError **error)
{
  struct stat now;

  if (stat (m->path, &now) == 0 && now.st_ino == m->st.st_ino && now.st_dev == m->st.st_dev)
    return TRUE;
  g_set_error (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY,
               "%s was replaced while waiting for its lock; try again", m->path);
  return FALSE;
}

static void
run_mbox (Batch *b, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RrLock) lock = NULL;
  g_autoptr (GPtrArray) changed = g_ptr_array_new_with_free_func (g_free);
  MboxRun m = { b, path, -1, { 0 }, NULL, changed };

  /* O_RDWR: fcntl write locks need a descriptor open for writing. */
  m.fd = open (path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (m.fd < 0)
    return report_io (b, path, "cannot open");
  lock = rr_lock_acquire (path, m.fd, b->opt->lock_timeout, b->opt->stale_lock, &error);
  if (lock && rr_lock_get_notice (lock))
    rr_report_warning (b->report, rr_lock_get_notice (lock));
  if (lock && fstat (m.fd, &m.st) == 0 && still_same (&m, &error))
    {
      remove_leftovers (&m);
      if (mbox_pass (&m, &error))
        for (guint i = 0; i < changed->len; i++)
          rr_report_rewritten (b->report, changed->pdata[i], NULL);
    }
  rr_new_file_abort (m.out);  /* after a rename this only frees it */
  if (error)
    rr_report_error (b->report, NULL, error);
  g_clear_pointer (&lock, rr_lock_release);
  close (m.fd);
}

static gboolean
not_spool (RrReport *report, const char *path, const char *why)
{
  g_autoptr (GError) error = g_error_new (RR_BATCH_ERROR, RR_BATCH_ERROR_NOT_SPOOL,
                                          "%s: not a spool: %s", path, why);

  rr_report_error (report, NULL, error);
  return FALSE;
}

/* An mbox is a regular file that is empty or starts with a From_ line; we
 * look before locking so that a stray text file is never locked or opened
 * for writing. */
static gboolean
looks_like_mbox (const char *path, RrReport *report)
{
  char head[8];
  ssize_t n;
  int fd = open (path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0)
    return not_spool (report, path, g_strerror (errno));
  n = read (fd, head, sizeof head);
  close (fd);
  if (n < 0)
    return not_spool (report, path, g_strerror (errno));
  if (!rr_mbox_sniff (head, n))
    return not_spool (report, path, "neither a Maildir nor an mbox (no From_ line at its start)");
  return TRUE;
}

void
rr_batch_run (const RrBatchOptions *opt, const char *spool, RrReport *report)
{
  Batch b = { opt, report, NULL };
  struct stat st;

  if (lstat (spool, &st) != 0)
    not_spool (report, spool, g_strerror (errno));
  else if (S_ISDIR (st.st_mode))
    {
      if (rr_maildir_is_maildir (spool))
        run_maildir (&b, spool);
      else
        not_spool (report, spool, "a directory without cur/ and new/");
    }
  else if (!S_ISREG (st.st_mode))
    not_spool (report, spool, "not a regular file or a directory");
  else if (looks_like_mbox (spool, report))
    run_mbox (&b, spool);
  g_free (b.folder);
}
