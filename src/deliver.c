/* deliver.c - template expansion, safe mailbox creation, Maildir and mbox
 * delivery.
 *
 * Paths built from addresses are walked one component at a time with openat
 * and O_NOFOLLOW below the template's fixed directory, so neither a hostile
 * local part nor a symlink planted in the tree can move a delivery elsewhere
 * (Postfix's safe_open reasoning, done with today's *at calls). An mbox
 * append remembers where it began and truncates back to it on any error
 * before unlocking, as Postfix's mail_copy does. */
#include "config.h"

#include "deliver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "lock.h"

G_DEFINE_QUARK (rr-deliver-error-quark, rr_deliver_error)

gboolean
rr_mbox_format_parse (const char *name, RrMboxFormat *format)
{
  static const char *const names[] = { "mboxrd", "mboxo", "mboxcl", "mboxcl2" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (name, names[i]) == 0)
      return *format = (RrMboxFormat) i, TRUE;
  return FALSE;
}

static gboolean
safe_part (const char *part, const char *what, GError **error)
{
  const char *why = NULL;

  if (part[0] == '\0')
    why = "is empty";
  else if (part[0] == '.')
    why = "starts with '.'";
  else if (strchr (part, '/') || strstr (part, ".."))
    why = "contains '/' or '..'";
  for (const char *p = part; !why && *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      why = "contains a control character";
  if (why)
    g_set_error (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE,
                 "refused to make a mailbox path: the %s '%s' %s", what, part, why);
  return why == NULL;
}

/* "john smith" -> john smith: the mailbox is named after the local part
 * itself, not its quoted form (so "..." cannot pass for a plain name). */
static void
unquote (char *local)
{
  char *w = local;

  if (local[0] != '"')
    return;
  for (const char *r = local + 1; *r && *r != '"'; r++)
    {
      if (*r == '\\' && r[1])
        r++;
      *w++ = *r;
    }
  *w = '\0';
}

char *
rr_deliver_expand (const char *template, const char *address, GError **error)
{
  g_autofree char *local = NULL;
  g_autofree char *domain = NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  if (!rr_address_split (address, &local, &domain))
    {
      local = g_strdup (address);
      domain = g_strdup ("");
    }
  unquote (local);
  for (const char *t = template; *t; t++)
    {
      if (*t != '%' || t[1] == '\0')
        {
          g_string_append_c (out, *t);
          continue;
        }
      switch (*++t)
        {
        case 'u':
          if (!safe_part (local, "local part", error))
            return NULL;
          g_string_append (out, local);
          break;
        case 'd':
          if (!safe_part (domain, "domain", error))
            return NULL;
          g_string_append (out, domain);
          break;
        case 'a':
          if (!safe_part (local, "local part", error) || !safe_part (domain, "domain", error))
            return NULL;
          g_string_append_printf (out, "%s@%s", local, domain);
          break;
        default:
          g_string_append_c (out, *t == '%' ? '%' : *t);
        }
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

char *
rr_deliver_template_root (const char *template)
{
  const char *pct = strchr (template, '%');
  gsize n = pct ? (gsize) (pct - template) : strlen (template);

  while (n > 0 && template[n - 1] != '/')
    n--;
  while (n > 1 && template[n - 1] == '/')
    n--;
  return n == 0 ? g_strdup (".") : g_strndup (template, n);
}

/* A directory we create belongs to --owner, else to the owner of the
 * directory it is made in; only root can give it away. */
static void
give_owner (int fd, const struct stat *parent, const RrDeliverOptions *opt)
{
  if (geteuid () != 0)
    return;
  if (opt && opt->owner_set)
    (void) !fchown (fd, opt->uid, opt->gid);
  else
    (void) !fchown (fd, parent->st_uid, parent->st_gid);
}

static gboolean
unsafe (GError **error, const char *dir, const char *name)
{
  g_set_error (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE,
               "refused %s/%s: a symlink or a file that is not a directory is in the way",
               dir, name);
  return FALSE;
}

/* Opens (making it if missing) directory @name below @dirfd, never through a
 * symlink. Returns the new fd or -1. */
static int
step_into (int dirfd, const char *at, const char *name, const RrDeliverOptions *opt,
           GError **error)
{
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat parent;

  if (fd >= 0)
    return fd;
  if (errno == ELOOP || errno == ENOTDIR)
    return unsafe (error, at, name), -1;
  if (errno == ENOENT && (rr_fs_mkdirat (dirfd, name, 0700) == 0 || errno == EEXIST))
    fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
    return unsafe (error, at, name), -1;
  if (fd < 0)
    {
      /* an I/O error is not a symlink in the way: reported as such */
      int e = errno;
      g_set_error (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_CREATE, "cannot create %s/%s: %s",
                   at, name, g_strerror (e));
      return -1;
    }
  if (fstat (dirfd, &parent) == 0)
    give_owner (fd, &parent, opt);
  return fd;
}

gboolean
rr_deliver_prepare (const char *root, const char *path, gboolean maildir,
                    const RrDeliverOptions *opt, GError **error)
{
  g_autofree char *rel = NULL;
  g_auto (GStrv) parts = NULL;
  g_autoptr (GString) at = NULL;
  guint n;
  int fd;

  if (g_mkdir_with_parents (root, 0700) != 0)
    return rr_fs_set_error (error, "cannot create", root);
  if ((fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return rr_fs_set_error (error, "cannot open", root);
  rel = g_strdup (g_str_has_prefix (path, root) ? path + strlen (root) : path);
  parts = g_strsplit (rel, "/", -1);
  n = g_strv_length (parts);
  if (!maildir && n > 0)
    n--;  /* the last part is the mbox file itself */
  at = g_string_new (root);
  for (guint i = 0; i < n + (maildir ? 3 : 0) && fd >= 0; i++)
    {
      static const char *const subs[] = { "cur", "new", "tmp" };
      const char *name = i < n ? parts[i] : subs[i - n];
      int next;
      if (name[0] == '\0')
        continue;
      next = step_into (fd, at->str, name, opt, error);
      if (i < n || next < 0)
        close (fd), fd = next;
      else
        close (next);  /* cur/new/tmp: siblings, stay in the Maildir */
      if (i < n)
        g_string_append_printf (at, "/%s", name);  /* for messages: where we are */
    }
  if (fd < 0)
    return FALSE;
  close (fd);
  return TRUE;
}

RrNewFile *
rr_deliver_maildir_write (const char *dir, const char *data, gsize len, GError **error)
{
  g_autofree char *tmp = g_build_filename (dir, "tmp", NULL);
  g_autoptr (RrNewFile) nf = rr_new_file_create (tmp, "reroute.", error);
  struct stat st;

  if (nf == NULL || !rr_new_file_write (nf, data, len, error))
    return NULL;
  /* A delivered message belongs to the mailbox's owner, as local(8) does. */
  if (geteuid () == 0 && stat (dir, &st) == 0
      && fchown (rr_new_file_get_fd (nf), st.st_uid, st.st_gid) != 0)
    return rr_fs_set_error (error, "cannot chown", rr_new_file_get_path (nf)), NULL;
  return g_steal_pointer (&nf);
}

static void
list_into (GHashTable *set, const char *dir, const char *sub)
{
  g_autofree char *path = g_build_filename (dir, sub, NULL);
  DIR *d = opendir (path);
  struct dirent *de;

  while (d && (de = readdir (d)) != NULL)
    if (de->d_name[0] != '.')
      g_hash_table_add (set, g_strndup (de->d_name, strcspn (de->d_name, ":!;")));
  if (d)
    closedir (d);
}

GHashTable *
rr_deliver_maildir_list (const char *dir)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  list_into (set, dir, "new");
  list_into (set, dir, "cur");
  return set;
}

static int
open_mbox (const char *path, const RrDeliverOptions *opt, GError **error)
{
  int fd = open (path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  g_autofree char *dir = NULL;
  struct stat parent;

  if (fd >= 0 || errno != ENOENT)
    {
      if (fd < 0 && errno == ELOOP)
        return unsafe (error, ".", path), -1;
      if (fd < 0)
        rr_fs_set_error (error, "cannot open", path);
      return fd;
    }
  fd = rr_fs_open (path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return rr_fs_set_error (error, "cannot create", path), -1;
  dir = g_path_get_dirname (path);
  if (stat (dir, &parent) == 0)
    give_owner (fd, &parent, opt);
  return fd;
}

/* The file must be a plain, singly linked file, still the one at @path. */
static gboolean
check_mbox (int fd, const char *path, struct stat *st, GError **error)
{
  struct stat now;

  if (fstat (fd, st) != 0)
    return rr_fs_set_error (error, "cannot stat", path);
  if (!S_ISREG (st->st_mode) || st->st_nlink != 1)
    return unsafe (error, ".", path);
  if (lstat (path, &now) != 0 || now.st_ino != st->st_ino || now.st_dev != st->st_dev)
    {
      g_set_error (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY,
                   "%s was replaced while waiting for its lock; try again", path);
      return FALSE;
    }
  return TRUE;
}

gboolean
rr_deliver_mbox_append (const char *path, const char *data, gsize len,
                        const RrDeliverOptions *opt, RrAppendHook hook, gpointer hook_data,
                        GError **error)
{
  g_autoptr (RrLock) lock = NULL;
  struct stat st;
  gboolean ok = FALSE;
  int fd = open_mbox (path, opt, error);

  if (fd < 0)
    return FALSE;
  lock = rr_lock_acquire (path, fd, opt->lock_timeout, opt->stale_lock, error);
  if (lock && check_mbox (fd, path, &st, error))
    {
      ok = !hook || hook (fd, st.st_size, hook_data, error);
      if (ok && !(rr_fs_write_all (fd, data, len) == 0 && rr_fs_fsync (fd) == 0))
        {
          ok = FALSE;
          rr_fs_set_error (error, "cannot append to", path);
          /* Nothing half-written may stay for the next reader. */
          if (ftruncate (fd, st.st_size) == 0)
            (void) !fsync (fd);
        }
    }
  g_clear_pointer (&lock, rr_lock_release);
  close (fd);
  return ok;
}

static gboolean
needs_escape (const char *line, gsize len, RrMboxFormat format)
{
  gsize i = 0;

  if (format == RR_MBOX_FORMAT_CL2)
    return FALSE;
  if (format == RR_MBOX_FORMAT_RD)
    while (i < len && line[i] == '>')
      i++;
  return len - i >= 5 && memcmp (line + i, "From ", 5) == 0;
}

static gsize
body_offset (const char *msg, gsize len)
{
  const char *lf = g_strstr_len (msg, len, "\n\n");
  const char *crlf = g_strstr_len (msg, len, "\r\n\r\n");

  if (lf && (!crlf || lf < crlf))
    return lf - msg + 2;
  return crlf ? (gsize) (crlf - msg + 4) : len;
}

GString *
rr_deliver_with_mbox_status (const char *info, const char *msg, gsize len)
{
  /* Maildir flag -> X-Status letter: replied, flagged, draft, trashed. */
  static const char map[][2] = { { 'R', 'A' }, { 'F', 'F' }, { 'D', 'T' }, { 'T', 'D' } };
  const char *two = strstr (info, "2,");
  const char *flags = two ? two + 2 : "";
  const char *nl = memchr (msg, '\n', len);
  const char *eol = nl && nl > msg && nl[-1] == '\r' ? "\r\n" : "\n";
  GString *out = g_string_sized_new (len + 48);
  char x[G_N_ELEMENTS (map) + 1];
  guint n = 0;

  /* O: not new (it was in cur/); R: seen. */
  g_string_append_printf (out, "Status: %sO%s", strchr (flags, 'S') ? "R" : "", eol);
  for (guint i = 0; i < G_N_ELEMENTS (map); i++)
    if (strchr (flags, map[i][0]))
      x[n++] = map[i][1];
  x[n] = '\0';
  if (n > 0)
    g_string_append_printf (out, "X-Status: %s%s", x, eol);
  g_string_append_len (out, msg, len);
  return out;
}

void
rr_deliver_mbox_frame (GString *out, const char *from_line, const char *msg, gsize len,
                       RrMboxFormat format)
{
  gsize escapes = 0, at = out->len, body_start, body_len;
  char line[64];

  /* Written straight into @out, sized once: a framed copy of a large
   * message is the only one made here (memory stays near the message). */
  for (gsize p = 0; p < len;)
    {
      const char *nl = memchr (msg + p, '\n', len - p);
      gsize end = nl ? (gsize) (nl - msg) + 1 : len;
      escapes += needs_escape (msg + p, end - p, format);
      p = end;
    }
  body_len = len + escapes + (len == 0 || msg[len - 1] != '\n');
  g_string_set_size (out, at + strlen (from_line) + sizeof line + body_len + 2);
  g_string_truncate (out, at);  /* keeps the room: no realloc below */
  g_string_append (out, from_line);
  if (!g_str_has_suffix (from_line, "\n"))
    g_string_append_c (out, '\n');
  body_start = out->len;
  for (gsize p = 0; p < len;)
    {
      const char *nl = memchr (msg + p, '\n', len - p);
      gsize end = nl ? (gsize) (nl - msg) + 1 : len;
      if (needs_escape (msg + p, end - p, format))
        g_string_append_c (out, '>');
      g_string_append_len (out, msg + p, end - p);
      p = end;
    }
  if (out->len == body_start || out->str[out->len - 1] != '\n')
    g_string_append_c (out, '\n');
  /* mboxcl counts the body as stored, escaping included */
  if (format == RR_MBOX_FORMAT_CL || format == RR_MBOX_FORMAT_CL2)
    {
      g_snprintf (line, sizeof line, "Content-Length: %" G_GSIZE_FORMAT "\n",
                  body_len - body_offset (out->str + body_start, body_len));
      g_string_insert (out, body_start, line);
    }
  g_string_append_c (out, '\n');
}
