/* mbox.c - a streaming mbox splitter with byte offsets.
 *
 * The reader keeps a window of the file: the current message and what has
 * been read past it. Offsets are kept relative to the current message so the
 * window can be compacted or grown while a boundary is searched for. */
#include "config.h"

#include "mbox.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (rr-mbox-error-quark, rr_mbox_error)

/* The read size. The fuzzing harness builds its own copy of this file with a
 * tiny one (Makefile.am), so that small inputs cross window boundaries. */
#ifndef RR_MBOX_CHUNK
#define RR_MBOX_CHUNK (256 * 1024)
#endif
#define CHUNK RR_MBOX_CHUNK

struct _RrMbox {
  char *path;
  int fd;
  char *buf;
  gsize cap;
  gsize len;      /* bytes in buf */
  gsize pos;      /* where the next message starts in buf */
  guint64 base;   /* file offset of buf[0] */
  gboolean eof;
  GQueue warnings;
};

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static gboolean
is_month (const char *w, gsize n)
{
  for (guint i = 0; n == 3 && i < G_N_ELEMENTS (months); i++)
    if (memcmp (w, months[i], 3) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
is_time (const char *w, gsize n)
{
  const char *colon = memchr (w, ':', n);

  return colon && colon > w && colon - w <= 2 && n >= (gsize) (colon - w) + 3
         && g_ascii_isdigit (w[0]) && g_ascii_isdigit (colon[1]) && g_ascii_isdigit (colon[2]);
}

static gboolean
is_year (const char *w, gsize n)
{
  return n == 4 && g_ascii_isdigit (w[0]) && g_ascii_isdigit (w[1])
         && g_ascii_isdigit (w[2]) && g_ascii_isdigit (w[3]);
}

/* "From SENDER DATE": the date must have a month name, a time and a year, as
 * asctime() and the variants MUAs write do; a body line such as "From here
 * on..." has not. */
gboolean
rr_mbox_is_from_line (const char *line, gsize len)
{
  gboolean month = FALSE, time = FALSE, year = FALSE;
  const char *nl = memchr (line, '\n', len);
  gsize i;

  if (nl)
    len = nl - line;
  if (len < 5 || memcmp (line, "From ", 5) != 0)
    return FALSE;
  for (i = 5; i < len;)
    {
      gsize w = i;
      while (w < len && line[w] != ' ' && line[w] != '\t' && line[w] != '\r')
        w++;
      month |= is_month (line + i, w - i);
      time |= is_time (line + i, w - i);
      year |= is_year (line + i, w - i);
      i = w + 1;
    }
  return month && time && year;
}

gboolean
rr_mbox_sniff (const char *head, gsize len)
{
  if (len >= 3 && memcmp (head, "\xEF\xBB\xBF", 3) == 0)
    head += 3, len -= 3;
  return len == 0 || (len >= 5 && memcmp (head, "From ", 5) == 0);
}

/* Makes at least @want bytes from pos available, unless the file ends first.
 * Returns the bytes available from pos, or -1 on a read error. */
static gssize
ensure (RrMbox *mb, gsize want, GError **error)
{
  while (mb->len - mb->pos < want && !mb->eof)
    {
      ssize_t n;
      if (mb->pos > 0)
        {
          memmove (mb->buf, mb->buf + mb->pos, mb->len - mb->pos);
          mb->base += mb->pos;
          mb->len -= mb->pos;
          mb->pos = 0;
        }
      if (mb->cap - mb->len < CHUNK)
        {
          mb->cap = MAX (mb->cap * 2, mb->len + CHUNK);
          mb->buf = g_realloc (mb->buf, mb->cap);
        }
      do
        n = read (mb->fd, mb->buf + mb->len, mb->cap - mb->len);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        {
          int e = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "cannot read %s: %s",
                       mb->path, g_strerror (e));
          return -1;
        }
      mb->eof = n == 0;
      mb->len += n;
    }
  return mb->len - mb->pos;
}

/* Offset (from pos) of the end of the line that starts at @at, or -1. */
static gssize
line_end (RrMbox *mb, gsize at, GError **error)
{
  for (gsize from = at;;)
    {
      gssize have = ensure (mb, from + 1, error);
      const char *nl;
      if (have < 0)
        return -1;
      nl = memchr (mb->buf + mb->pos + from, '\n', have - MIN ((gsize) have, from));
      if (nl)
        return nl - (mb->buf + mb->pos) + 1;
      if (mb->eof)
        return have;
      from = have;
      if (ensure (mb, have + CHUNK, error) < 0)
        return -1;
    }
}

/* Whether a From_ line starts at @at (from pos). -1 on read error. */
static int
from_line_at (RrMbox *mb, gsize at, GError **error)
{
  gssize end = line_end (mb, at, error);

  if (end < 0)
    return -1;
  return rr_mbox_is_from_line (mb->buf + mb->pos + at, end - at);
}

/* "Name: value", with the white space real header fields have after the
 * colon (so a body line "https://..." is not taken for one). */
static gboolean
is_field_line (const char *line, gsize len)
{
  gsize i = 0;

  while (i < len && line[i] > 32 && line[i] < 127 && line[i] != ':')
    i++;
  return i > 0 && i + 1 < len && line[i] == ':' && strchr (" \t\r\n", line[i + 1]);
}

/* Netscape's bare "From - " marker line, nothing else on it. */
static gboolean
is_netscape_marker (const char *line, gsize len)
{
  gsize i = 6;

  if (len < 6 || memcmp (line, "From -", 6) != 0)
    return FALSE;
  while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
    i++;
  return i == len || line[i] == '\n';
}

/* A "From " line without a date is a boundary only where a new message
 * plainly starts: followed by a header field, and after a blank line unless
 * it is Netscape's bare "From - " marker (GMime's own tests have that one
 * with no blank line before it). */
static int
bare_from_line_at (RrMbox *mb, gsize at, GError **error)
{
  const char *m = mb->buf + mb->pos;
  gboolean blank_before = at >= 2 && m[at - 1] == '\n'
                          && (m[at - 2] == '\n' || (at >= 3 && m[at - 2] == '\r' && m[at - 3] == '\n'));
  gssize end, next;

  if ((end = line_end (mb, at, error)) < 0)
    return -1;
  if (!blank_before && !is_netscape_marker (mb->buf + mb->pos + at, end - at))
    return 0;
  if ((next = line_end (mb, end, error)) < 0)
    return -1;
  return is_field_line (mb->buf + mb->pos + end, next - end);
}

/* The first "\nFrom " in s[0..len). glibc's memmem is a generic two-way
 * search (41% of an mbox rewrite's instructions); its memchr is vectorised,
 * and a line at a time is as fast as the lines are long. */
static const char *
find_from (const char *s, gsize len)
{
  const char *end = s + len;

  for (const char *p = s; (p = memchr (p, '\n', end - p)) != NULL; p++)
    if (end - p >= 6 && memcmp (p + 1, "From ", 5) == 0)
      return p;
  return NULL;
}

/* Offset (from pos) of the next From_ line after @from, or of the file end. */
static gssize
scan_boundary (RrMbox *mb, gsize from, GError **error)
{
  for (;;)
    {
      gssize have = ensure (mb, from + 6, error);
      const char *hit;
      int ok;

      if (have < 0)
        return -1;
      hit = (gsize) have > from ? find_from (mb->buf + mb->pos + from, have - from) : NULL;
      if (hit == NULL)
        {
          if (mb->eof)
            return have;
          from = have > 5 ? (gsize) have - 5 : from;  /* a match may straddle the chunk end */
          if (ensure (mb, have + CHUNK, error) < 0)
            return -1;
          continue;
        }
      from = hit - (mb->buf + mb->pos) + 1;
      if ((ok = from_line_at (mb, from, error)) == 0)
        ok = bare_from_line_at (mb, from, error);
      if (ok != 0)
        return ok < 0 ? -1 : (gssize) from;
    }
}

/* Finds a Content-Length field in the header block of the message at pos
 * (which lies within [@from_len, @end)); sets the body's offset. */
static gboolean
content_length (RrMbox *mb, gsize from_len, gsize end, guint64 *n, gsize *body)
{
  const char *m = mb->buf + mb->pos;
  gboolean found = FALSE;

  for (gsize p = from_len; p < end;)
    {
      const char *nl = memchr (m + p, '\n', end - p);
      gsize next = nl ? (gsize) (nl - m) + 1 : end;
      if (m[p] == '\n' || (m[p] == '\r' && p + 1 < end && m[p + 1] == '\n'))
        {
          *body = next;
          return found;
        }
      if (next - p > 15 && g_ascii_strncasecmp (m + p, "Content-Length:", 15) == 0)
        {
          g_autofree char *v = g_strndup (m + p + 15, next - p - 15);
          char *tail = NULL;
          g_strstrip (v);
          *n = g_ascii_strtoull (v, &tail, 10);
          found = v[0] != '\0' && tail && *tail == '\0' && g_ascii_isdigit (v[0]);
        }
      p = next;
    }
  return FALSE;
}

/* Where a message whose Content-Length ends at @at really ends: at @at, or
 * past one blank line, if the end of file or a line starting "From " follows.
 * The length itself vouches for the boundary, so the From_ line need not
 * carry a date here (old Netscape mboxes write a bare "From - "). The bytes
 * are peeked with pread, so a lying length never makes us buffer the spool. */
static gsize
boundary_at (RrMbox *mb, gsize at)
{
  guint64 abs = mb->base + mb->pos + at;
  struct stat st;
  char peek[8];
  const char *p;
  gsize left;
  ssize_t n;

  if (at == 0 || fstat (mb->fd, &st) != 0 || abs > (guint64) st.st_size)
    return 0;
  n = pread (mb->fd, peek, sizeof peek, abs - 1);
  if (n < 1)
    return 0;
  p = peek + 1;
  left = n - 1;
  for (gsize skip = 0; skip <= 2; skip++)
    {
      /* A From_ line right at the end must start a line; else a newline
       * (the separator, or the body's last) must come first. */
      if ((skip == 0 && peek[0] != '\n' && abs != (guint64) st.st_size)
          || (skip == 1 && !(left >= 1 && p[0] == '\n'))
          || (skip == 2 && !(left >= 2 && p[0] == '\r' && p[1] == '\n')))
        continue;
      if (abs + skip == (guint64) st.st_size
          || (left >= skip + 5 && memcmp (p + skip, "From ", 5) == 0))
        return at + skip;
    }
  return 0;
}

static gssize
honour_content_length (RrMbox *mb, gsize from_len, gsize scan_end, GError **error)
{
  guint64 n = 0;
  gsize body = 0;
  gsize real;

  if (!content_length (mb, from_len, scan_end, &n, &body))
    return scan_end;
  real = n > G_MAXSIZE - body - 8 ? 0 : boundary_at (mb, body + n);
  if (real > 0)
    return ensure (mb, real, error) < 0 ? -1 : (gssize) real;
  g_queue_push_tail (&mb->warnings,
                     g_strdup_printf ("%s: message at byte %" G_GUINT64_FORMAT
                                      ": Content-Length %" G_GUINT64_FORMAT
                                      " does not end at a message boundary; ignored",
                                      mb->path, mb->base + mb->pos, n));
  return scan_end;
}

static gsize
separator_length (const char *m, gsize len, gsize from_len)
{
  if (len >= from_len + 4 && memcmp (m + len - 4, "\r\n\r\n", 4) == 0)
    return 2;
  if (len >= from_len + 2 && m[len - 1] == '\n' && m[len - 2] == '\n')
    return 1;
  return 0;
}

int
rr_mbox_next (RrMbox *mb, RrMboxMessage *msg, GError **error)
{
  gssize have = ensure (mb, 1, error), from_len, end;

  if (have <= 0)
    return have < 0 ? -1 : 0;
  if ((from_len = line_end (mb, 0, error)) < 0
      || (end = scan_boundary (mb, from_len - 1, error)) < 0
      || (end = honour_content_length (mb, from_len, end, error)) < 0)
    return -1;
  msg->offset = mb->base + mb->pos;
  msg->data = mb->buf + mb->pos;
  msg->len = end;
  msg->from_len = from_len;
  msg->sep_len = separator_length (msg->data, end, from_len);
  mb->pos += end;
  return 1;
}

RrMbox *
rr_mbox_open (const char *path, int fd, GError **error)
{
  g_autoptr (RrMbox) mb = g_new0 (RrMbox, 1);
  gssize have;

  mb->path = g_strdup (path);
  mb->fd = fd;
  g_queue_init (&mb->warnings);
  if ((have = ensure (mb, 8, error)) < 0)
    return NULL;
  if (!rr_mbox_sniff (mb->buf, have))
    {
      g_set_error (error, RR_MBOX_ERROR, RR_MBOX_ERROR_NOT_MBOX,
                   "%s: not a mailbox: it does not start with a From_ line", path);
      return NULL;
    }
  if (have >= 3 && memcmp (mb->buf, "\xEF\xBB\xBF", 3) == 0)
    mb->pos = 3;  /* the byte-order mark stays in the file, outside any message */
  return g_steal_pointer (&mb);
}

void
rr_mbox_free (RrMbox *mb)
{
  if (mb == NULL)
    return;
  g_queue_clear_full (&mb->warnings, g_free);
  g_free (mb->buf);
  g_free (mb->path);
  g_free (mb);
}

char *
rr_mbox_take_warning (RrMbox *mb)
{
  return g_queue_pop_head (&mb->warnings);
}
