/* refile.c - delivery to each canonical mailbox, exactly once. */
#include "config.h"

#include "refile.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "lock.h"
#include "maildir.h"

#include <sys/stat.h>

typedef struct {
  guint64 offset;
  guint64 length;
  char *path;
  gboolean keep;
} Entry;

/* A Maildir delivery written to tmp/ and waiting for the batch's sync. */
typedef struct {
  RrNewFile *nf;
  char *target;      /* new/NAME or cur/NAME:2,FLAGS */
  char *dir;         /* the Maildir */
  char *name;        /* NAME, for the Maildir's set of names */
  gboolean linked;   /* published by this run (not found there already) */
} Pending;

static void
pending_free (gpointer p)
{
  Pending *d = p;

  rr_new_file_abort (d->nf);
  g_free (d->target);
  g_free (d->dir);
  g_free (d->name);
  g_free (d);
}

struct _RrRefile {
  const RrRefileOptions *opt;
  GPtrArray *pending;    /* Pending, in order */
  char *root;            /* the template's fixed directory */
  char *journal;         /* path, or NULL */
  int journal_fd;
  GHashTable *entries;   /* key -> Entry */
  GHashTable *maildirs;  /* prepared Maildir path -> set of message names */
  /* its insertions, against readers in workers (POSIX rather than GMutex,
   * whose futexes ThreadSanitizer cannot see) */
  pthread_mutex_t maildirs_lock;
  gboolean fresh;        /* the last rr_refile_deliver() delivered something new */
};

/* A delivery written ahead into the tmp/ of Maildir @dir: the file, or
 * why it could not be written. */
typedef struct {
  char *dir;
  RrNewFile *nf;
  GError *error;
} Draft;

struct _RrRefileDrafts {
  GPtrArray *list;  /* Draft */
};

static void
entry_free (gpointer p)
{
  Entry *e = p;

  g_free (e->path);
  g_free (e);
}

/* Journal lines: "KEY OFFSET LENGTH PATH"; a later line for a key wins. */
static void
load_journal (RrRefile *rf)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (rf->journal, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      g_auto (GStrv) f = g_strsplit (*l, " ", 4);
      Entry *e;
      if (g_strv_length (f) != 4)
        continue;
      e = g_new0 (Entry, 1);
      e->offset = g_ascii_strtoull (f[1], NULL, 10);
      e->length = g_ascii_strtoull (f[2], NULL, 10);
      e->path = g_strdup (f[3]);
      g_hash_table_replace (rf->entries, g_strdup (f[0]), e);
    }
}

RrRefile *
rr_refile_new (const RrRefileOptions *opt, const char *journal, GError **error G_GNUC_UNUSED)
{
  RrRefile *rf = g_new0 (RrRefile, 1);

  rf->opt = opt;
  rf->root = rr_deliver_template_root (opt->template);
  rf->journal = g_strdup (journal);
  rf->journal_fd = -1;
  rf->pending = g_ptr_array_new_with_free_func (pending_free);
  rf->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  rf->maildirs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_hash_table_unref);
  pthread_mutex_init (&rf->maildirs_lock, NULL);
  if (rf->journal)
    load_journal (rf);
  return rf;
}

void
rr_refile_free (RrRefile *rf)
{
  if (rf == NULL)
    return;
  if (rf->journal_fd >= 0)
    close (rf->journal_fd);
  g_ptr_array_unref (rf->pending);  /* unsynced deliveries are dropped */
  g_hash_table_unref (rf->entries);
  g_hash_table_unref (rf->maildirs);
  pthread_mutex_destroy (&rf->maildirs_lock);
  g_free (rf->journal);
  g_free (rf->root);
  g_free (rf);
}

/* The per-mailbox key: the source's identity and the canonical address. */
static char *
delivery_key (const RrRefileSource *src, const char *canonical)
{
  g_autofree char *folded = g_ascii_strdown (canonical, -1);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  g_checksum_update (sum, (const guchar *) src->key, -1);
  g_checksum_update (sum, (const guchar *) "\n", 1);
  g_checksum_update (sum, (const guchar *) folded, -1);
  return g_strndup (g_checksum_get_string (sum), 24);
}

static GHashTable *
maildir_names (RrRefile *rf, const char *dir, GError **error)
{
  GHashTable *names = g_hash_table_lookup (rf->maildirs, dir);

  if (names)
    return names;
  if (!rr_deliver_prepare (rf->root, dir, TRUE, &rf->opt->deliver, error))
    return NULL;
  rr_maildir_clean_tmp (dir);  /* what a killed run of ours left there */
  names = rr_deliver_maildir_list (dir);
  pthread_mutex_lock (&rf->maildirs_lock);
  g_hash_table_insert (rf->maildirs, g_strdup (dir), names);
  pthread_mutex_unlock (&rf->maildirs_lock);
  return names;
}

static gboolean
is_prepared (RrRefile *rf, const char *dir)
{
  gboolean yes;

  pthread_mutex_lock (&rf->maildirs_lock);
  yes = g_hash_table_contains (rf->maildirs, dir);
  pthread_mutex_unlock (&rf->maildirs_lock);
  return yes;
}

/* The Maildir an address's template names, without its trailing '/'.
 * (transfer full) */
static char *
maildir_of (const RrRefileOptions *opt, const char *address, GError **error)
{
  char *path = rr_deliver_expand (opt->template, address, error);
  gsize n = path ? strlen (path) : 0;

  while (n > 1 && path[n - 1] == '/')
    path[--n] = '\0';
  return path;
}

static void
draft_free (gpointer p)
{
  Draft *d = p;

  rr_new_file_abort (d->nf);  /* not delivered after all: removed */
  g_clear_error (&d->error);
  g_free (d->dir);
  g_free (d);
}

static GString *unescape (const char *msg, gsize len);

RrRefileDrafts *
rr_refile_write_drafts (RrRefile *rf, const RrRefileSource *src, const GPtrArray *to,
                        const char *msg, gsize len)
{
  RrRefileDrafts *drafts = NULL;
  g_autoptr (GString) plain = NULL;

  if (!g_str_has_suffix (rf->opt->template, "/"))
    return NULL;
  if (src->unescape)  /* as rr_refile_deliver() will */
    {
      plain = unescape (msg, len);
      msg = plain->str, len = plain->len;
    }
  for (guint i = 0; i < to->len; i++)
    {
      Draft *d;
      char *dir = maildir_of (rf->opt, to->pdata[i], NULL);
      /* Only into a Maildir the caller has made safe: never through a
       * symlink, never into one that is not there yet. */
      if (dir == NULL || !is_prepared (rf, dir))
        {
          g_free (dir);
          continue;
        }
      d = g_new0 (Draft, 1);
      d->dir = dir;
      d->nf = rr_deliver_maildir_write (dir, msg, len, &d->error);
      if (d->nf && !rr_new_file_close (d->nf, &d->error))
        g_clear_pointer (&d->nf, rr_new_file_abort);
      if (drafts == NULL)
        {
          drafts = g_new0 (RrRefileDrafts, 1);
          drafts->list = g_ptr_array_new_with_free_func (draft_free);
        }
      g_ptr_array_add (drafts->list, d);
    }
  return drafts;
}

void
rr_refile_drafts_free (RrRefileDrafts *drafts)
{
  if (drafts == NULL)
    return;
  g_ptr_array_unref (drafts->list);
  g_free (drafts);
}

/* The written file for @dir, closed, or NULL with @error set when writing
 * it failed, or NULL when there is none. (transfer full) */
static RrNewFile *
take_draft (RrRefileDrafts *drafts, const char *dir, GError **error)
{
  for (guint i = 0; drafts && i < drafts->list->len; i++)
    {
      Draft *d = drafts->list->pdata[i];
      if (strcmp (d->dir, dir) != 0)
        continue;
      if (d->error)
        g_propagate_error (error, g_steal_pointer (&d->error));
      return g_steal_pointer (&d->nf);
    }
  return NULL;
}

static gboolean
pending_has (RrRefile *rf, const char *name)
{
  for (guint i = 0; i < rf->pending->len; i++)
    if (strcmp (((Pending *) rf->pending->pdata[i])->name, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
deliver_maildir (RrRefile *rf, const RrRefileSource *src, const char *dir, const char *key,
                 const char *msg, gsize len, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%ld.R%s.%s", (long) src->mtime, key,
                                           rr_fs_hostname ());
  g_autofree char *target = NULL;
  g_autoptr (RrNewFile) nf = NULL;
  g_autoptr (GError) local = NULL;
  GHashTable *names = maildir_names (rf, dir, error);
  Pending *d;

  if (names == NULL)
    return FALSE;
  if (g_hash_table_contains (names, name) || pending_has (rf, name))
    return TRUE;  /* delivered by an earlier, interrupted run, or queued */
  rf->fresh = TRUE;
  target = src->info ? g_strdup_printf ("%s/cur/%s%s", dir, name, src->info)
                     : g_strdup_printf ("%s/new/%s", dir, name);
  nf = take_draft (src->drafts, dir, &local);
  if (local)
    return g_propagate_error (error, g_steal_pointer (&local)), FALSE;
  if (nf == NULL && ((nf = rr_deliver_maildir_write (dir, msg, len, error)) == NULL
                     || !rr_new_file_close (nf, error)))
    return FALSE;
  d = g_new0 (Pending, 1);
  d->nf = g_steal_pointer (&nf);
  d->target = g_steal_pointer (&target);
  d->dir = g_strdup (dir);
  d->name = g_steal_pointer (&name);
  g_ptr_array_add (rf->pending, d);
  return TRUE;
}

/* The directories the pending deliveries are published in, each once. */
static GPtrArray *
distinct_dirs (GPtrArray *pending)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < pending->len; i++)
    {
      char *sub = g_path_get_dirname (((Pending *) pending->pdata[i])->target);
      if (g_hash_table_contains (seen, sub))
        {
          g_free (sub);
          continue;
        }
      g_ptr_array_add (dirs, sub);
      g_hash_table_add (seen, sub);
    }
  return dirs;
}

/* The links of a batch that could not be published whole, or whose
 * directories could not be made durable, are taken back: the caller keeps
 * the sources, and a rerun delivers again. Only what this run linked: a
 * name that was there already is another run's delivery. */
static void
unpublish (GPtrArray *pending)
{
  for (guint i = 0; i < pending->len; i++)
    if (((Pending *) pending->pdata[i])->linked)
      unlink (((Pending *) pending->pdata[i])->target);
}

/* Makes everything written on the file systems of @dirs durable: one
 * syncfs(2) per file system. */
static gboolean
sync_file_systems (GPtrArray *dirs, GError **error)
{
  g_autoptr (GHashTable) devices = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);

  for (guint i = 0; i < dirs->len; i++)
    {
      struct stat st;
      gint64 *dev = g_new (gint64, 1);
      if (stat (dirs->pdata[i], &st) != 0 || g_hash_table_contains (devices, (*dev = st.st_dev, dev)))
        {
          g_free (dev);
          continue;
        }
      g_hash_table_add (devices, dev);
      if (!rr_fs_syncfs (dirs->pdata[i], error))
        return FALSE;
    }
  return TRUE;
}

/* Up to this many directories of a batch are synced one by one; beyond, a
 * sync of their file systems is cheaper (measured on ext4: a batch of 256
 * deliveries to 200 Maildirs spent 0.2 s in 107 directory fsyncs each). */
#define SYNC_DIRS_ONE_BY_ONE 8

static gboolean
sync_dirs (GPtrArray *dirs, GError **error)
{
  if (dirs->len > SYNC_DIRS_ONE_BY_ONE)
    return sync_file_systems (dirs, error);
  for (guint i = 0; i < dirs->len; i++)
    if (!rr_fs_sync_dir (dirs->pdata[i], error))
      return FALSE;
  return TRUE;
}

gboolean
rr_refile_flush (RrRefile *rf, GError **error)
{
  g_autoptr (GPtrArray) dirs = NULL;
  g_autoptr (GPtrArray) pending = g_steal_pointer (&rf->pending);

  rf->pending = g_ptr_array_new_with_free_func (pending_free);
  if (pending->len == 0)
    return TRUE;
  dirs = distinct_dirs (pending);
  /* Every file of the batch is durable before any is published. */
  if (!sync_file_systems (dirs, error))
    return FALSE;
  for (guint i = 0; i < pending->len; i++)
    {
      Pending *d = pending->pdata[i];
      g_autoptr (GError) local = NULL;
      /* A name derived from the message that already exists is the same
       * message, delivered before: link(2) never replaces it. The name is
       * not added to the mailbox's list: a run meets each name once, and
       * the list of a big refile would grow with it. */
      d->linked = rr_new_file_link_unsynced (d->nf, d->target, &local);
      if (!d->linked && rr_fs_last_errno () != EEXIST)
        {
          /* linked, but its temporary name stayed: taken back too */
          d->linked = g_file_test (d->target, G_FILE_TEST_EXISTS);
          return unpublish (pending), g_propagate_error (error, g_steal_pointer (&local)), FALSE;
        }
    }
  if (!sync_dirs (dirs, error))
    return unpublish (pending), FALSE;
  return TRUE;
}

/* Whether @path holds exactly @data at the offset the journal gave. */
static gboolean
already_appended (const Entry *e, const char *path, const GString *data)
{
  g_autofree char *have = NULL;
  ssize_t n;
  int fd;

  if (e == NULL || strcmp (e->path, path) != 0 || e->length != data->len)
    return FALSE;
  if ((fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return FALSE;
  have = g_malloc (data->len + 1);
  n = pread (fd, have, data->len, e->offset);
  close (fd);
  return n == (ssize_t) data->len && memcmp (have, data->str, data->len) == 0;
}

typedef struct {
  RrRefile *rf;
  const char *key;
  const char *path;
  gsize len;
} Intent;

/* Under the destination's lock: record where the message will go, durably,
 * before a byte of it is written. */
static gboolean
record_intent (int fd G_GNUC_UNUSED, guint64 offset, gpointer data, GError **error)
{
  Intent *in = data;
  RrRefile *rf = in->rf;
  g_autofree char *line = NULL;
  Entry *e;

  if (rf->journal == NULL)
    return TRUE;
  if (rf->journal_fd < 0
      && (rf->journal_fd = rr_fs_open (rf->journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
                                                        | O_NOFOLLOW, 0600)) < 0)
    return rr_fs_set_error (error, "cannot open journal", rf->journal);
  line = g_strdup_printf ("%s %" G_GUINT64_FORMAT " %" G_GSIZE_FORMAT " %s\n", in->key, offset,
                          in->len, in->path);
  if (rr_fs_write_all (rf->journal_fd, line, strlen (line)) != 0 || rr_fs_fsync (rf->journal_fd) != 0)
    return rr_fs_set_error (error, "cannot write journal", rf->journal);
  e = g_new0 (Entry, 1);
  e->offset = offset;
  e->length = in->len;
  e->path = g_strdup (in->path);
  g_hash_table_replace (rf->entries, g_strdup (in->key), e);
  return TRUE;
}

/* The Return-Path address of @msg's header, or NULL. (transfer full) */
static char *
return_path (const char *msg, gsize len)
{
  for (gsize p = 0; p < len;)
    {
      const char *nl = memchr (msg + p, '\n', len - p);
      gsize end = nl ? (gsize) (nl - msg) + 1 : len;
      if (end - p <= 2 && (msg[p] == '\n' || msg[p] == '\r'))
        break;
      if (end - p > 12 && g_ascii_strncasecmp (msg + p, "Return-Path:", 12) == 0)
        {
          g_autofree char *v = g_strndup (msg + p + 12, end - p - 12);
          g_strdelimit (v, "<>\r\n\t", ' ');
          g_strstrip (v);
          return v[0] && !strchr (v, ' ') ? g_steal_pointer (&v) : NULL;
        }
      p = end;
    }
  return NULL;
}

static char *
from_line (const RrRefile *rf, const RrRefileSource *src, const char *msg, gsize len)
{
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *date = NULL;
  g_autofree char *sender = NULL;

  if (src->from_line)
    return g_strchomp (g_strndup (src->from_line, src->from_line_len));
  sender = g_strdup (rf->opt->from);
  if (sender == NULL)
    sender = return_path (msg, len);
  /* The source's own time, not now: a rerun must frame the same bytes. */
  now = src->mtime > 0 ? g_date_time_new_from_unix_utc (src->mtime) : g_date_time_new_now_utc ();
  date = g_date_time_format (now, "%a %b %_d %H:%M:%S %Y");
  return g_strdup_printf ("From %s %s", sender ? sender : "MAILER-DAEMON", date);
}

static gboolean
deliver_mbox (RrRefile *rf, const RrRefileSource *src, const char *path, const char *key,
              const char *msg, gsize len, GError **error)
{
  g_autofree char *from = from_line (rf, src, msg, len);
  g_autoptr (GString) framed = g_string_sized_new (len + 128);
  g_autoptr (GString) flagged = src->info ? rr_deliver_with_mbox_status (src->info, msg, len)
                                          : NULL;
  Intent in = { rf, key, path, 0 };

  if (flagged)  /* a Maildir message's flags are in its name: keep them */
    msg = flagged->str, len = flagged->len;
  rr_deliver_mbox_frame (framed, from, msg, len, rf->opt->deliver.format);
  /* A killed run may have left its dotlock even where nothing is left to do. */
  rr_lock_clear_stale (path, rf->opt->deliver.stale_lock);
  if (already_appended (g_hash_table_lookup (rf->entries, key), path, framed))
    return TRUE;
  rf->fresh = TRUE;
  in.len = framed->len;
  return rr_deliver_prepare (rf->root, path, FALSE, &rf->opt->deliver, error)
         && rr_deliver_mbox_append (path, framed->str, framed->len, &rf->opt->deliver,
                                    record_intent, &in, error);
}

/* Undoes mbox quoting: one '>' less on lines matching ^>+From . */
static GString *
unescape (const char *msg, gsize len)
{
  GString *out = g_string_sized_new (len);

  for (gsize p = 0; p < len;)
    {
      const char *nl = memchr (msg + p, '\n', len - p);
      gsize end = nl ? (gsize) (nl - msg) + 1 : len, q = p;
      while (q < end && msg[q] == '>')
        q++;
      if (q > p && end - q >= 5 && memcmp (msg + q, "From ", 5) == 0)
        p++;
      g_string_append_len (out, msg + p, end - p);
      p = end;
    }
  return out;
}

/* A file's identity: paths that differ by "//", "./" or symlinked parents
 * name the same one. */
typedef struct {
  dev_t dev;
  ino_t ino;
} FileId;

struct _RrRefileHome {
  gboolean known;     /* it could be stat'ed */
  gboolean folder;    /* a Maildir folder (a directory), else an mbox file */
  FileId self;
  gboolean sub;       /* a Maildir++ subfolder of the Maildir @maildir */
  FileId maildir;
};

static gboolean
same_file (const FileId *id, const struct stat *st)
{
  return id->dev == st->st_dev && id->ino == st->st_ino;
}

/* Whether the folder at @path is a Maildir++ subfolder, a directory named
 * ".Name" (as the walker meets them, so a symlinked one is one too); if so,
 * @maildir gets the identity of the directory it is in. */
static gboolean
subfolder_of (const char *path, FileId *maildir)
{
  g_autofree char *abs = g_canonicalize_filename (path, NULL);
  g_autofree char *name = g_path_get_basename (abs);
  g_autofree char *parent = g_path_get_dirname (abs);
  struct stat st;

  if (name[0] != '.' || stat (parent, &st) != 0)
    return FALSE;
  maildir->dev = st.st_dev;
  maildir->ino = st.st_ino;
  return TRUE;
}

RrRefileHome *
rr_refile_home_new (const char *path)
{
  RrRefileHome *h = g_new0 (RrRefileHome, 1);
  struct stat st;

  if (stat (path, &st) != 0)
    return h;
  h->known = TRUE;
  h->folder = S_ISDIR (st.st_mode);
  h->self.dev = st.st_dev;
  h->self.ino = st.st_ino;
  h->sub = h->folder && subfolder_of (path, &h->maildir);
  return h;
}

void
rr_refile_home_free (RrRefileHome *home)
{
  g_free (home);
}

/* Whether the mailbox at @path (a Maildir when @maildir) holds @h: is it,
 * or, for a Maildir, has it as a Maildir++ subfolder. A mailbox that does
 * not exist yet holds nothing. */
static gboolean
is_home (const RrRefileHome *h, const char *path, gboolean maildir)
{
  struct stat st;

  if (h == NULL || !h->known || h->folder != maildir || stat (path, &st) != 0)
    return FALSE;
  return same_file (&h->self, &st) || (h->sub && same_file (&h->maildir, &st));
}

GPtrArray *
rr_refile_elsewhere (const RrRefileOptions *opt, const RrRefileSource *src,
                     const GPtrArray *canonical, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  gboolean maildir = g_str_has_suffix (opt->template, "/");

  for (guint i = 0; i < canonical->len; i++)
    {
      g_autofree char *path = rr_deliver_expand (opt->template, canonical->pdata[i], error);
      if (path == NULL)
        return NULL;
      if (!is_home (src->home, path, maildir))
        g_ptr_array_add (out, canonical->pdata[i]);
    }
  return g_steal_pointer (&out);
}

char **
rr_refile_destinations (const RrRefileOptions *opt, const GPtrArray *canonical, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < canonical->len; i++)
    {
      char *p = rr_deliver_expand (opt->template, canonical->pdata[i], error);
      if (p == NULL)
        return NULL;
      g_ptr_array_add (out, p);
    }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&out), FALSE);
}

gboolean
rr_refile_deliver (RrRefile *rf, const RrRefileSource *src, const GPtrArray *canonical,
                   const char *msg, gsize len, GError **error)
{
  g_autoptr (GString) plain = src->unescape ? unescape (msg, len) : NULL;
  gboolean maildir = g_str_has_suffix (rf->opt->template, "/");
  guint queued = rf->pending->len;

  if (plain)
    msg = plain->str, len = plain->len;
  rf->fresh = FALSE;
  for (guint i = 0; i < canonical->len; i++)
    {
      g_autofree char *key = delivery_key (src, canonical->pdata[i]);
      g_autofree char *path = maildir ? maildir_of (rf->opt, canonical->pdata[i], error)
                                      : rr_deliver_expand (rf->opt->template,
                                                           canonical->pdata[i], error);
      gboolean ok;
      if (path == NULL)
        return FALSE;
      ok = maildir ? deliver_maildir (rf, src, path, key, msg, len, error)
                   : deliver_mbox (rf, src, path, key, msg, len, error);
      /* The message stays in the source: its Maildir deliveries to the
       * other users are dropped, not published (a rerun makes them all). */
      if (!ok)
        return g_ptr_array_set_size (rf->pending, queued), FALSE;
    }
  return TRUE;
}

guint
rr_refile_pending (const RrRefile *rf)
{
  return rf->pending->len;
}

gboolean
rr_refile_was_fresh (const RrRefile *rf)
{
  return rf->fresh;
}

void
rr_refile_keep (RrRefile *rf, const RrRefileSource *src, const GPtrArray *canonical)
{
  for (guint i = 0; i < canonical->len; i++)
    {
      g_autofree char *key = delivery_key (src, canonical->pdata[i]);
      Entry *e = g_hash_table_lookup (rf->entries, key);
      if (e)
        e->keep = TRUE;
    }
}

gboolean
rr_refile_finish (RrRefile *rf, gboolean complete, GError **error)
{
  g_autoptr (GString) kept = g_string_new (NULL);
  g_autoptr (RrNewFile) nf = NULL;
  g_autofree char *dir = NULL;
  GHashTableIter it;
  gpointer k, v;

  if (rf->journal == NULL || !complete)
    return TRUE;
  g_hash_table_iter_init (&it, rf->entries);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (((Entry *) v)->keep)
      g_string_append_printf (kept, "%s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %s\n",
                              (char *) k, ((Entry *) v)->offset, ((Entry *) v)->length,
                              ((Entry *) v)->path);
  if (kept->len == 0)
    return rr_fs_unlink (rf->journal) == 0 || errno == ENOENT
           || rr_fs_set_error (error, "cannot remove", rf->journal);
  dir = g_path_get_dirname (rf->journal);
  nf = rr_new_file_create (dir, ".reroute-journal.", error);
  return nf && rr_new_file_write (nf, kept->str, kept->len, error)
         && rr_new_file_finish (nf, NULL, error) && rr_new_file_rename (nf, rf->journal, error);
}
