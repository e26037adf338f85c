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

#include "address.h"
#include "ahead.h"
#include "fsutil.h"
#include "lock.h"
#include "maildir.h"
#include "mbox.h"
#include "message.h"

G_DEFINE_QUARK (rr-batch-error-quark, rr_batch_error)

typedef struct {
  const RrBatchOptions *opt;
  RrReport *report;
  char *folder;       /* the Maildir folder whose tmp/ was last cleaned */
  RrRefile *refile;   /* for the spool being refiled */
  GPtrArray *removals; /* refiled Maildir sources, removed after the flush */
  gboolean failed;    /* an error happened in this spool */
  guint jobs;         /* worker threads reading a Maildir ahead */
  RrAhead *ahead;
  gint ahead_bytes;   /* read ahead and not yet done (atomic) */
  char *home_path;    /* the Maildir folder or mbox that @home is */
  RrRefileHome *home; /* the mailbox the messages being refiled are in */
} Batch;

#define FLUSH_EVERY 256

/* What examine() learnt of a message. */
typedef struct {
  gsize header_start; /* where the header starts, past BOM and From_ line */
  gint64 date;        /* its Date field */
  char *message_id;
  gsize unread;       /* bytes past what was read: a dry run reads headers */
  GPtrArray *elsewhere; /* a refile's addresses not at home, found ahead */
} Facts;

static void
facts_clear (Facts *f)
{
  g_clear_pointer (&f->message_id, g_free);
  g_clear_pointer (&f->elsewhere, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Facts, facts_clear)

/* Parses and resolves one message: NULL when it is bad data. Thread-safe:
 * it reads only the options. */
static RrRewrite *
analyse (const RrBatchOptions *opt, const char *data, gsize len, Facts *facts, GError **error)
{
  g_autoptr (RrMessage) msg = rr_message_new (data, len, error);
  RrRewrite *rw = msg ? rr_rewrite_new (msg, opt->table, &opt->rewrite, error) : NULL;

  if (rw && facts)
    {
      facts->header_start = rr_message_get_header_start (msg);
      facts->date = opt->refile && !opt->dry_run ? rr_message_get_date (msg) : 0;
      facts->message_id = rr_message_get_message_id (msg);
    }
  return rw;
}

static void
fail (Batch *b, const char *place, const GError *error)
{
  b->failed = TRUE;
  if (error->domain == RR_DELIVER_ERROR && error->code == RR_DELIVER_ERROR_UNSAFE)
    rr_report_skipped (b->report, place, error);
  else
    rr_report_error (b->report, place, error);
}

static void
report (Batch *b, const char *place, const Facts *facts, const RrRewrite *rw, RrAction action,
        const char *const *destinations)
{
  RrReportEntry e = { place, facts->message_id, rw, action, destinations,
                      rr_rewrite_get_size (rw) + facts->unread };

  rr_report_action (b->report, &e);
}

/* The mailbox identity of the folder or mbox @path, made once for all
 * its messages. (transfer none) */
static const RrRefileHome *
home_of (Batch *b, const char *path)
{
  if (g_strcmp0 (b->home_path, path) != 0)
    {
      g_free (b->home_path);
      rr_refile_home_free (b->home);
      b->home_path = g_strdup (path);
      b->home = rr_refile_home_new (path);
    }
  return b->home;
}

/* The rewritten message as it is delivered: *@msg, *@len, without its
 * first @prefix bytes (BOM, From_ line) and last @suffix (mbox separator).
 * (transfer full: what *@msg points into) */
static GString *
delivered_bytes (const RrRewrite *rw, gsize prefix, gsize suffix, const char **msg, gsize *len)
{
  GString *bytes = g_string_sized_new (rr_rewrite_get_size (rw));

  rr_rewrite_append (rw, bytes);
  g_string_truncate (bytes, bytes->len - MIN (suffix, bytes->len));
  *msg = bytes->str + MIN (prefix, bytes->len);
  *len = bytes->len - MIN (prefix, bytes->len);
  return bytes;
}

/* Delivers the rewritten message to the mailboxes of @to. */
static gboolean
deliver (Batch *b, const char *place, const RrRefileSource *src, const RrRewrite *rw,
         const GPtrArray *to, gsize prefix, gsize suffix)
{
  const char *msg;
  gsize len;
  g_autoptr (GString) bytes = delivered_bytes (rw, prefix, suffix, &msg, &len);
  g_autoptr (GError) error = NULL;

  if (rr_refile_deliver (b->refile, src, to, msg, len, &error))
    return TRUE;
  fail (b, place, error);
  return FALSE;
}

/* Refiles one message: TRUE when it may leave the source. */
static gboolean
refile (Batch *b, const char *place, const RrRefileSource *src, const RrRewrite *rw,
        const Facts *facts, gsize suffix)
{
  const GPtrArray *canonical = rr_rewrite_get_canonical (rw);
  g_autoptr (GPtrArray) to = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) dests = NULL;
  gboolean stays, leave;
  RrAction action;

  if (canonical->len == 0)
    return rr_report_unchanged (b->report), FALSE;
  to = facts->elsewhere ? g_ptr_array_ref (facts->elsewhere)
                        : rr_refile_elsewhere (b->opt->refile, src, canonical, &error);
  if (to == NULL || (dests = rr_refile_destinations (b->opt->refile, to, &error)) == NULL)
    return fail (b, place, error), FALSE;
  /* Already in the mailbox of each of its addresses: it stays as it is. */
  if (to->len == 0)
    return rr_report_unchanged (b->report), FALSE;
  /* Some recipients are not routed, or it is in one of its own mailboxes
   * already: delivered to the others, it stays where it is. */
  stays = rr_rewrite_has_unrouted (rw) || to->len < canonical->len;
  leave = !b->opt->copy && !stays;
  action = stays ? RR_ACTION_REFILE_KEEP : leave ? RR_ACTION_REFILE : RR_ACTION_COPY;
  if (!b->opt->dry_run && !deliver (b, place, src, rw, to, facts->header_start, suffix))
    return FALSE;
  /* A message that stays counts as unchanged; its report line says what
   * was delivered, unless an earlier run delivered it already. */
  if (!leave && !b->opt->dry_run && !rr_refile_was_fresh (b->refile))
    rr_report_unchanged (b->report);
  else
    report (b, place, facts, rw, action, (const char *const *) dests);
  if (leave || b->opt->dry_run)
    return leave && !b->opt->dry_run;
  rr_refile_keep (b->refile, src, to);
  return FALSE;
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

/* Whether s[0..len) holds an empty line (LF or CRLF) after a line end at
 * or past *from; if not, *from is where to look again with more bytes. */
static gboolean
has_empty_line (const char *s, gsize len, gsize *from)
{
  for (const char *p = s + *from; (p = memchr (p, '\n', s + len - p)) != NULL; p++)
    {
      gsize rest = s + len - p - 1;
      if ((rest >= 1 && p[1] == '\n') || (rest >= 2 && p[1] == '\r' && p[2] == '\n'))
        return TRUE;
      if (rest < 2)
        {
          *from = p - s;
          return FALSE;
        }
    }
  *from = len;
  return FALSE;
}

/* Reads up to the end of the header (the first empty line) or of the file:
 * all that a dry run needs to judge a message. */
static gboolean
read_head (int fd, const char *path, char **data, gsize *len, GError **error)
{
  GString *buf = g_string_sized_new (8192);
  gsize from = 0;

  for (;;)
    {
      gsize old = buf->len;
      ssize_t n;

      g_string_set_size (buf, old + 8192);
      n = read (fd, buf->str + old, 8192);
      if (n < 0 && errno == EINTR)
        {
          g_string_set_size (buf, old);
          continue;
        }
      if (n < 0)
        {
          rr_fs_set_error (error, "cannot read", path);
          g_string_free (buf, TRUE);
          return FALSE;
        }
      g_string_set_size (buf, old + n);
      if (n == 0 || has_empty_line (buf->str, buf->len, &from))
        break;
    }
  *len = buf->len;
  *data = g_string_free (buf, FALSE);
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
                 const RrRewrite *rw, const Facts *facts)
{
  g_autoptr (GError) error = NULL;
  g_autofree struct iovec *iov = NULL;
  const char *dest[] = { e->path, NULL };
  int n = 0;

  if (!b->opt->dry_run)  /* a dry run read only the header */
    iov = segments (rw, &n);
  if (b->opt->dry_run || rr_maildir_replace (e, st, iov, n, &error))
    report (b, e->path, facts, rw, RR_ACTION_REWRITE, dest);
  else
    rr_report_error (b->report, e->path, error);
}

/* Publishes the batch of deliveries, then (only then) removes their
 * sources, with one fsync per source directory. */
static void
flush_removals (Batch *b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) dirs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter it;
  gpointer dir;

  if (!rr_refile_flush (b->refile, &error))
    fail (b, NULL, error);
  rr_report_release (b->report, error == NULL);
  rr_report_hold (b->report);
  for (guint i = 0; !error && i < b->removals->len; i++)
    {
      const char *path = b->removals->pdata[i];
      if (rr_fs_unlink (path) != 0 && errno != ENOENT)
        rr_fs_set_error (&error, "cannot remove", path), fail (b, NULL, error);
      else
        g_hash_table_add (dirs, g_path_get_dirname (path));
    }
  g_ptr_array_set_size (b->removals, 0);
  g_hash_table_iter_init (&it, dirs);
  while (g_hash_table_iter_next (&it, &dir, NULL))
    if (!rr_fs_sync_dir (dir, &error))
      fail (b, NULL, error), g_clear_error (&error);
}

static void
maildir_refile (Batch *b, const RrMaildirEntry *e, const struct stat *st, const RrRewrite *rw,
                const Facts *facts, RrRefileDrafts *drafts)
{
  g_autofree char *key = g_strndup (e->name, strcspn (e->name, ":!;"));
  const char *info = e->name + strlen (key);
  RrRefileSource src = { key, st->st_mtime, NULL, NULL, 0, FALSE, home_of (b, e->folder),
                         drafts };

  if (strcmp (e->sub, "cur") == 0 && *info)
    src.info = info;
  if (refile (b, e->path, &src, rw, facts, 0))
    g_ptr_array_add (b->removals, g_strdup (e->path));
  /* With --copy nothing is removed, but deliveries still pile up. */
  if (b->refile && (b->removals->len >= FLUSH_EVERY
                    || rr_refile_pending (b->refile) >= FLUSH_EVERY))
    flush_removals (b);
}

/* One Maildir message on its way: read and analysed (in a worker thread
 * when there are several jobs), then acted on in the spool's order. */
typedef enum { JOB_OK, JOB_BAD, JOB_GONE, JOB_IO, JOB_NOT_REGULAR, JOB_LATER } JobState;

typedef struct {
  char *folder, *sub, *name, *path;
  RrMaildirDir *dir;
  const RrRefileHome *home;  /* the folder's, while its messages are in flight */
  JobState state;
  struct stat st;
  char *text;
  gsize len;
  RrRewrite *rw;
  Facts facts;
  GError *error;
  gint charged;       /* bytes counted against READ_AHEAD_BYTES */
  RrRefileDrafts *drafts;
} MaildirJob;

/* The messages read ahead hold at most this many bytes; a message that
 * does not fit is read when its turn comes. */
#define READ_AHEAD_BYTES (2 << 20)

static void
maildir_job_free (MaildirJob *j)
{
  g_free (j->folder), g_free (j->sub), g_free (j->name), g_free (j->path);
  g_clear_pointer (&j->dir, rr_maildir_dir_unref);
  g_clear_pointer (&j->drafts, rr_refile_drafts_free);
  g_free (j->text);
  g_clear_pointer (&j->rw, rr_rewrite_free);
  facts_clear (&j->facts);
  g_clear_error (&j->error);
  g_free (j);
}

/* Whether @size more bytes may be read ahead; if so they are counted. */
static gboolean
charge (Batch *b, MaildirJob *j, goffset size)
{
  gint n = (gint) MIN (size, READ_AHEAD_BYTES + 1);

  if (g_atomic_int_add (&b->ahead_bytes, n) + n > READ_AHEAD_BYTES)
    return g_atomic_int_add (&b->ahead_bytes, -n), FALSE;
  j->charged = n;
  return TRUE;
}

static JobState
maildir_read (MaildirJob *j, Batch *b, gboolean ahead)
{
  RrMaildirEntry e = { j->folder, j->sub, j->name, j->path, j->dir };
  int fd = rr_maildir_open (&e, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  gboolean read_ok;

  if (fd < 0)  /* gone: another MUA moved it, not an error */
    return errno == ENOENT ? JOB_GONE : (rr_fs_set_error (&j->error, "cannot open", j->path), JOB_IO);
  if (fstat (fd, &j->st) != 0 || !S_ISREG (j->st.st_mode))
    {
      close (fd);
      g_set_error (&j->error, RR_BATCH_ERROR, RR_BATCH_ERROR_NOT_SPOOL, "not a regular file");
      return JOB_NOT_REGULAR;
    }
  if (ahead && !charge (b, j, j->st.st_size))
    return close (fd), JOB_LATER;
  read_ok = b->opt->dry_run ? read_head (fd, j->path, &j->text, &j->len, &j->error)
                            : read_whole (fd, j->st.st_size, j->path, &j->text, &j->len,
                                          &j->error);
  close (fd);
  if (!read_ok)
    return JOB_IO;
  j->rw = analyse (b->opt, j->text, j->len, &j->facts, &j->error);
  j->facts.unread = (gsize) j->st.st_size > j->len ? j->st.st_size - j->len : 0;
  return j->rw ? JOB_OK : JOB_BAD;
}

/* In a worker, for a refile: the addresses the message goes to (kept in
 * @facts for refile()), and its copies written into their Maildirs:
 * writing is most of a refile's work, and the ordered thread then only
 * publishes (refile.c decides where it may write ahead). */
static RrRefileDrafts *
study_refile (Batch *b, const RrRefileSource *src, const RrRewrite *rw, Facts *facts,
              gsize suffix)
{
  const GPtrArray *canonical = rr_rewrite_get_canonical (rw);
  g_autoptr (GString) bytes = NULL;
  const char *msg;
  gsize len;

  if (canonical->len == 0
      || (facts->elsewhere = rr_refile_elsewhere (b->opt->refile, src, canonical, NULL)) == NULL
      || facts->elsewhere->len == 0)
    return NULL;
  bytes = delivered_bytes (rw, facts->header_start, suffix, &msg, &len);
  return rr_refile_write_drafts (b->refile, src, facts->elsewhere, msg, len);
}

static void
maildir_draft (MaildirJob *j, Batch *b)
{
  RrRefileSource src = { NULL, 0, NULL, NULL, 0, FALSE, j->home, NULL };

  j->drafts = study_refile (b, &src, j->rw, &j->facts, 0);
}

static void
maildir_work (gpointer item, gpointer data)
{
  MaildirJob *j = item;
  Batch *b = data;

  j->state = maildir_read (j, b, b->jobs > 1);
  if (j->state == JOB_OK && j->home)
    maildir_draft (j, b);
}

static void
maildir_act_on (Batch *b, MaildirJob *j)
{
  RrMaildirEntry e = { j->folder, j->sub, j->name, j->path, j->dir };

  if (b->opt->refile)
    maildir_refile (b, &e, &j->st, j->rw, &j->facts, j->drafts);
  else if (rr_rewrite_changes (j->rw))
    {
      if (g_strcmp0 (b->folder, e.folder) != 0 && !b->opt->dry_run)
        {
          g_free (b->folder);
          b->folder = g_strdup (e.folder);
          rr_maildir_clean_tmp (e.folder);
        }
      maildir_rewrite (b, &e, &j->st, j->rw, &j->facts);
    }
  else
    rr_report_unchanged (b->report);
}

static void
maildir_done (gpointer item, gpointer data)
{
  MaildirJob *j = item;
  Batch *b = data;

  if (j->state == JOB_LATER)
    j->state = maildir_read (j, b, FALSE);
  if (j->state == JOB_OK || j->state == JOB_BAD)
    rr_report_scanned (b->report, j->len + j->facts.unread);
  if (j->state == JOB_OK)
    maildir_act_on (b, j);
  else if (j->state == JOB_BAD || j->state == JOB_NOT_REGULAR)
    rr_report_skipped (b->report, j->path, j->error);
  else if (j->state == JOB_IO)
    rr_report_error (b->report, NULL, j->error);
  g_atomic_int_add (&b->ahead_bytes, -j->charged);
  maildir_job_free (j);
}

static gboolean
maildir_message (const RrMaildirEntry *e, gpointer data, GError **error G_GNUC_UNUSED)
{
  Batch *b = data;
  MaildirJob *j = g_new0 (MaildirJob, 1);

  j->folder = g_strdup (e->folder);
  j->sub = g_strdup (e->sub);
  j->name = g_strdup (e->name);
  j->path = g_strdup (e->path);
  j->dir = e->dir ? rr_maildir_dir_ref (e->dir) : NULL;
  if (b->refile)  /* the walk drains before it meets another folder */
    j->home = home_of (b, e->folder);
  rr_ahead_push (b->ahead, j);
  return TRUE;
}

static gboolean
maildir_folder_error (const RrMaildirEntry *e G_GNUC_UNUSED, gpointer data, GError **error)
{
  Batch *b = data;

  rr_ahead_drain (b->ahead);  /* keep the report in the spool's order */
  rr_report_error (b->report, NULL, *error);
  g_clear_error (error);
  return TRUE;
}

static gboolean
maildir_dir (const RrMaildirEntry *e G_GNUC_UNUSED, gpointer data, GError **error G_GNUC_UNUSED)
{
  rr_ahead_drain (((Batch *) data)->ahead);
  return TRUE;
}

static void
run_maildir (Batch *b, const char *path)
{
  g_autoptr (GError) error = NULL;

  rr_address_init ();  /* before the threads that parse */
  rr_fs_hostname ();   /* and write */
  b->ahead = rr_ahead_new (b->jobs, 64 * b->jobs, maildir_work, maildir_done, b);
  if (!rr_maildir_walk (path, b->opt->recurse, maildir_message, maildir_folder_error,
                        maildir_dir, b, &error)
      && error)
    {
      rr_ahead_drain (b->ahead);
      rr_report_error (b->report, path, error);
    }
  g_clear_pointer (&b->ahead, rr_ahead_free);
}

typedef struct {
  Batch *b;
  const char *path;
  int fd;
  struct stat st;
  RrNewFile *out;      /* NULL until the first message changes */
  GHashTable *seen;    /* 64 bits of a message's checksum -> how many so far */
  GError *stop;        /* the write that failed: later messages are left */
  const RrRefileHome *home;
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

/* A stable identity for an mbox message: @sum, the checksum of its bytes,
 * and how many identical ones came before it (so that true duplicates are
 * each delivered). */
static char *
mbox_key (MboxRun *m, const char *sum)
{
  /* Counted by the first 64 bits, held in the table's pointer itself: the
   * table of a large mbox stays small. */
  gpointer id = GSIZE_TO_POINTER ((gsize) g_ascii_strtoull (sum + 48, NULL, 16));
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (m->seen, id));

  g_hash_table_insert (m->seen, id, GUINT_TO_POINTER (n + 1));
  return g_strdup_printf ("%s#%u", sum, n);
}

/* What a worker learnt of an mbox message (see MboxJob). */
typedef struct {
  RrRewrite *rw;       /* NULL: bad data */
  GError *error;       /* why it is bad */
  Facts facts;
  char *sum;           /* SHA-256 of its bytes, when it may be refiled */
  RrRefileDrafts *drafts;
} MboxFacts;

static void
mbox_facts_clear (MboxFacts *f)
{
  g_clear_pointer (&f->rw, rr_rewrite_free);
  g_clear_error (&f->error);
  facts_clear (&f->facts);
  g_clear_pointer (&f->sum, g_free);
  g_clear_pointer (&f->drafts, rr_refile_drafts_free);
}

static gboolean
mbox_refile (MboxRun *m, const RrMboxMessage *msg, const char *place, MboxFacts *f)
{
  /* A dry run delivers nothing, so it needs no identity. */
  g_autofree char *key = f->sum ? mbox_key (m, f->sum) : NULL;
  const RrRewrite *rw = f->rw;
  const Facts *facts = &f->facts;
  RrRefileSource src = { key, (time_t) facts->date, NULL, msg->data, msg->from_len, TRUE,
                         m->home, f->drafts };
  gboolean leave = refile (m->b, place, &src, rw, facts, msg->sep_len);
  g_autoptr (GError) error = NULL;

  /* Publish in batches: the mbox itself changes only at the end. */
  if (m->b->refile && rr_refile_pending (m->b->refile) >= FLUSH_EVERY
      && !rr_refile_flush (m->b->refile, &error))
    fail (m->b, NULL, error);
  return leave;
}

/* In a worker when there are several jobs: parses and resolves @msg and,
 * for a refile, takes its checksum and writes its Maildir copies ahead. */
static void
mbox_study (MboxRun *m, const RrMboxMessage *msg, MboxFacts *f)
{
  Batch *b = m->b;
  RrRefileSource src = { NULL, 0, NULL, msg->data, msg->from_len, TRUE, m->home, NULL };

  f->rw = analyse (b->opt, msg->data, msg->len, &f->facts, &f->error);
  if (f->rw == NULL || b->refile == NULL)
    return;
  f->sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) msg->data, msg->len);
  f->drafts = study_refile (b, &src, f->rw, &f->facts, msg->sep_len);
}

/* One message of an mbox: rewritten, refiled away, or copied as it is into
 * the new mbox (which exists from the first message that changes on). */
static gboolean
mbox_message (MboxRun *m, const RrMboxMessage *msg, MboxFacts *f, GError **error)
{
  g_autofree char *place = g_strdup_printf ("%s at byte %" G_GUINT64_FORMAT, m->path,
                                            msg->offset);
  const char *dest[] = { m->path, NULL };
  const RrRewrite *rw = f->rw;
  gboolean refiling = m->b->opt->refile != NULL;
  gboolean changed = rw && !refiling && rr_rewrite_changes (rw);
  gboolean removed;

  rr_report_scanned (m->b->report, msg->len);
  if (rw == NULL)
    rr_report_skipped (m->b->report, place, f->error);
  removed = rw && refiling && mbox_refile (m, msg, place, f);
  if (rw && !refiling && !changed)
    rr_report_unchanged (m->b->report);
  if (changed)
    report (m->b, place, &f->facts, rw, RR_ACTION_REWRITE, dest);
  if (m->b->opt->dry_run)
    return TRUE;
  if ((changed || removed) && m->out == NULL && !start_output (m, msg->offset, error))
    return FALSE;
  if (m->out == NULL || removed)
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

/* One mbox message on its way: its bytes copied out of the reader's
 * buffer, studied in a worker, then acted on in the mbox's order. */
typedef struct {
  MboxRun *m;
  RrMboxMessage msg;   /* its data is @text */
  char *text;
  GPtrArray *warnings; /* the reader's, reported before it */
  MboxFacts facts;
  gint charged;
} MboxJob;

static void
mbox_work (gpointer item, gpointer data G_GNUC_UNUSED)
{
  MboxJob *j = item;

  mbox_study (j->m, &j->msg, &j->facts);
}

static void
mbox_done (gpointer item, gpointer data)
{
  MboxJob *j = item;
  Batch *b = data;

  for (guint i = 0; j->warnings && i < j->warnings->len; i++)
    rr_report_warning (b->report, j->warnings->pdata[i]);
  if (j->m->stop == NULL)
    mbox_message (j->m, &j->msg, &j->facts, &j->m->stop);
  g_atomic_int_add (&b->ahead_bytes, -j->charged);
  mbox_facts_clear (&j->facts);
  g_clear_pointer (&j->warnings, g_ptr_array_unref);
  g_free (j->text);
  g_free (j);
}

/* Hands @msg to the workers, with a copy of its bytes; a message too big
 * to read ahead is studied and acted on here, after those before it. */
static void
mbox_push (MboxRun *m, RrMbox *mb, const RrMboxMessage *msg)
{
  Batch *b = m->b;
  MboxJob *j = g_new0 (MboxJob, 1);
  gint n = (gint) MIN (msg->len, READ_AHEAD_BYTES + 1);
  char *warning;

  j->m = m;
  j->msg = *msg;
  while ((warning = rr_mbox_take_warning (mb)) != NULL)
    {
      if (j->warnings == NULL)
        j->warnings = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (j->warnings, warning);
    }
  if (b->jobs > 1 && g_atomic_int_add (&b->ahead_bytes, n) + n <= READ_AHEAD_BYTES)
    {
      j->charged = n;
      j->text = g_memdup2 (msg->data, msg->len);
      j->msg.data = j->text;
      rr_ahead_push (b->ahead, j);
      return;
    }
  if (b->jobs > 1)
    g_atomic_int_add (&b->ahead_bytes, -n);
  rr_ahead_drain (b->ahead);
  mbox_work (j, b);
  mbox_done (j, b);
}

static gboolean
mbox_pass (MboxRun *m, GError **error)
{
  g_autoptr (RrMbox) mb = rr_mbox_open (m->path, m->fd, error);
  RrMboxMessage msg;
  int got = 0;

  if (mb == NULL)
    return FALSE;
  while (m->stop == NULL && (got = rr_mbox_next (mb, &msg, error)) > 0)
    mbox_push (m, mb, &msg);
  rr_ahead_drain (m->b->ahead);
  if (m->stop)
    return g_propagate_error (error, g_steal_pointer (&m->stop)), FALSE;
  if (got < 0)
    return FALSE;
  /* Refiled messages leave the mbox only once their copies are durable. */
  if (m->b->refile && !rr_refile_flush (m->b->refile, error))
    return FALSE;
  if (m->b->opt->dry_run)
    return TRUE;
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

/* Takes the mbox's locks; a dry run takes none, so as never to hold up an
 * MDA, and only reads. */
static RrLock *
lock_mbox (MboxRun *m, GError **error)
{
  RrLock *lock;

  if (m->b->opt->dry_run)
    return fstat (m->fd, &m->st) == 0 ? rr_lock_acquire_none () : NULL;
  lock = rr_lock_acquire (m->path, m->fd, m->b->opt->lock_timeout, m->b->opt->stale_lock,
                          error);
  if (lock && rr_lock_get_notice (lock))
    rr_report_warning (m->b->report, rr_lock_get_notice (lock));
  if (lock && (fstat (m->fd, &m->st) != 0 || !still_same (m, error)))
    g_clear_pointer (&lock, rr_lock_release);
  if (lock)
    remove_leftovers (m);
  return lock;
}

static void
run_mbox (Batch *b, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RrLock) lock = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  MboxRun m = { b, path, -1, { 0 }, NULL, seen, NULL, home_of (b, path) };

  /* O_RDWR: fcntl write locks need a descriptor open for writing. */
  m.fd = open (path, (b->opt->dry_run ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (m.fd < 0)
    return report_io (b, path, "cannot open");
  rr_report_hold (b->report);
  rr_address_init ();  /* before the threads that parse */
  rr_fs_hostname ();   /* and write */
  b->ahead = rr_ahead_new (b->jobs, 64 * b->jobs, mbox_work, mbox_done, b);
  if ((lock = lock_mbox (&m, &error)) != NULL)
    mbox_pass (&m, &error);
  g_clear_pointer (&b->ahead, rr_ahead_free);
  rr_report_release (b->report, error == NULL);
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
  ssize_t n = -1;
  int fd = open (path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

  if (fd >= 0)
    n = read (fd, head, sizeof head);
  if (n < 0)
    {
      /* A spool we cannot read is an I/O error (74), not "not a spool". */
      g_autoptr (GError) error = NULL;
      rr_fs_set_error (&error, fd < 0 ? "cannot open" : "cannot read", path);
      rr_report_error (report, NULL, error);
    }
  if (fd >= 0)
    close (fd);
  if (n < 0)
    return FALSE;
  if (!rr_mbox_sniff (head, n))
    return not_spool (report, path, "neither a Maildir nor an mbox (no From_ line at its start)");
  return TRUE;
}

/* The journal of refile deliveries for a spool, beside it. (transfer full) */
static char *
journal_path (const char *spool, gboolean maildir)
{
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;

  if (maildir)
    return g_build_filename (spool, ".reroute-journal", NULL);
  dir = g_path_get_dirname (spool);
  base = g_path_get_basename (spool);
  return g_strdup_printf ("%s/.%s.reroute-journal", dir, base);
}

static void
run_spool (Batch *b, const char *spool, gboolean maildir)
{
  g_autofree char *journal = journal_path (spool, maildir);
  g_autoptr (GError) error = NULL;
  guint errors = rr_report_get_errors (b->report)->len;

  if (b->opt->refile && !b->opt->dry_run)
    b->refile = rr_refile_new (b->opt->refile, journal, NULL);
  b->removals = g_ptr_array_new_with_free_func (g_free);
  if (maildir)
    {
      rr_report_hold (b->report);
      run_maildir (b, spool);
      if (b->refile)
        flush_removals (b);
      rr_report_release (b->report, TRUE);
    }
  else
    run_mbox (b, spool);
  g_clear_pointer (&b->removals, g_ptr_array_unref);
  if (b->refile
      && !rr_refile_finish (b->refile, !b->failed
                                       && rr_report_get_errors (b->report)->len == errors,
                            &error))
    rr_report_error (b->report, NULL, error);
  g_clear_pointer (&b->refile, rr_refile_free);
}

void
rr_batch_run (const RrBatchOptions *opt, const char *spool, RrReport *report)
{
  Batch b = { opt, report, NULL, NULL, NULL, FALSE, rr_ahead_jobs (opt->jobs), NULL, 0,
              NULL, NULL };
  struct stat st;

  if (lstat (spool, &st) != 0)
    not_spool (report, spool, g_strerror (errno));
  else if (S_ISDIR (st.st_mode))
    {
      if (rr_maildir_is_maildir (spool))
        run_spool (&b, spool, TRUE);
      else
        not_spool (report, spool, "a directory without cur/ and new/");
    }
  else if (!S_ISREG (st.st_mode))
    not_spool (report, spool, "not a regular file or a directory");
  else if (looks_like_mbox (spool, report))
    run_spool (&b, spool, FALSE);
  g_free (b.folder);
  g_free (b.home_path);
  rr_refile_home_free (b.home);
}
