/* mbox_test.c - the mbox splitter: From_ line recognition, sniffing, and
 * splitting real files byte for byte (offsets, separators, CRLF,
 * Content-Length honoured or ignored, chunk boundaries, a 50 MB spool).
 * Every file is written under a fresh g_dir_make_tmp() directory. */
#include "config.h"

#include "mbox.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CHUNK (256 * 1024) /* the reader's read size, as in mbox.c */
#define BOM "\xEF\xBB\xBF"

static char *tmpdir;

static void
setup (void)
{
  tmpdir = rr_test_tmpdir_new ("mbox");
}

static void
teardown (void)
{
  rr_test_tmpdir_free (g_steal_pointer (&tmpdir));
}

TestSuite (mbox, .init = setup, .fini = teardown);

/* One message as the reader gave it, copied out of its window. */
typedef struct {
  guint64 offset;
  GBytes *bytes;
  gsize from_len;
  gsize sep_len;
} Msg;

static void
msg_clear (gpointer p)
{
  g_bytes_unref (((Msg *) p)->bytes);
}

/* (transfer full) TMPDIR/NAME holding @len bytes of @data. */
static char *
write_file (const char *name, const char *data, gsize len)
{
  char *path = g_build_filename (tmpdir, name, NULL);
  GError *error = NULL;

  cr_assert (g_file_set_contents (path, data, len, &error), "%s", error ? error->message : "");
  return path;
}

/* Asserts @got equals @want byte for byte, naming the first difference. */
static void
assert_bytes (const char *got, gsize got_len, const char *want, gsize want_len, const char *what)
{
  gsize i = 0;

  while (i < got_len && i < want_len && got[i] == want[i])
    i++;
  cr_assert (i == got_len && i == want_len,
             "%s: %zu bytes, expected %zu; first difference at byte %zu", what, got_len,
             want_len, i);
}

/* Splits @path; every warning goes to @warnings. (transfer full) */
static GArray *
split_path (const char *path, GPtrArray *warnings)
{
  GError *error = NULL;
  GArray *msgs = g_array_new (FALSE, TRUE, sizeof (Msg));
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  RrMboxMessage m;
  RrMbox *mb;
  char *w;
  int r;

  g_array_set_clear_func (msgs, msg_clear);
  cr_assert (fd >= 0, "open %s: %s", path, g_strerror (errno));
  mb = rr_mbox_open (path, fd, &error);
  cr_assert_not_null (mb, "%s", error ? error->message : "");
  while ((r = rr_mbox_next (mb, &m, &error)) == 1)
    {
      Msg copy = { m.offset, g_bytes_new (m.data, m.len), m.from_len, m.sep_len };
      g_array_append_val (msgs, copy);
      while ((w = rr_mbox_take_warning (mb)) != NULL)
        g_ptr_array_add (warnings, w);
    }
  cr_assert_eq (r, 0, "rr_mbox_next: %s", error ? error->message : "");
  cr_assert_eq (rr_mbox_next (mb, &m, &error), 0, "the end stays the end");
  while ((w = rr_mbox_take_warning (mb)) != NULL)
    g_ptr_array_add (warnings, w);
  rr_mbox_free (mb);
  close (fd);
  return msgs;
}

static Msg *
msg_at (GArray *msgs, guint i)
{
  return &g_array_index (msgs, Msg, i);
}

/* Writes @prefix and @pieces as one file and asserts that it splits into
 * exactly those pieces, each at its byte offset with its From_ line length.
 * (transfer full) */
static GArray *
split_pieces (const char *prefix, const char *const *pieces, guint n, GPtrArray *warnings)
{
  g_autoptr (GString) file = g_string_new (prefix);
  g_autofree guint64 *offsets = g_new (guint64, n);
  g_autofree char *path = NULL;
  GArray *msgs;

  for (guint i = 0; i < n; i++)
    {
      offsets[i] = file->len;
      g_string_append (file, pieces[i]);
    }
  path = write_file ("mbox", file->str, file->len);
  msgs = split_path (path, warnings);
  cr_assert_eq (msgs->len, n, "%u messages, expected %u", msgs->len, n);
  for (guint i = 0; i < n; i++)
    {
      Msg *m = msg_at (msgs, i);
      gsize len;
      const char *data = g_bytes_get_data (m->bytes, &len);
      const char *nl = strchr (pieces[i], '\n');
      g_autofree char *what = g_strdup_printf ("message %u", i);

      cr_assert_eq (m->offset, offsets[i], "message %u at %" G_GUINT64_FORMAT ", expected %"
                    G_GUINT64_FORMAT, i, m->offset, offsets[i]);
      assert_bytes (data, len, pieces[i], strlen (pieces[i]), what);
      cr_assert_eq (m->from_len, nl ? (gsize) (nl - pieces[i]) + 1 : strlen (pieces[i]),
                    "from_len of message %u: %zu", i, m->from_len);
    }
  return msgs;
}

static void
assert_sep_lens (GArray *msgs, const gsize *want)
{
  for (guint i = 0; i < msgs->len; i++)
    cr_assert_eq (msg_at (msgs, i)->sep_len, want[i], "sep_len of message %u: %zu, expected %zu",
                  i, msg_at (msgs, i)->sep_len, want[i]);
}

/* From_ line recognition */

Test (mbox, is_from_line_accepts_real_from_lines)
{
  const char *good[] = {
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011",
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n",
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\r\n",
    "From user@example.com Fri Jul  8 12:08:34 2011 +0000",
    "From user@example.com Fri Jul  8 12:08:34 +0000 2011",
    "From user@example.com Fri Jul  8 12:08:34 CEST 2011",
    "From - Mon Jan 01 00:00:00 2001",                   /* Thunderbird */
    "From a@b Sat, 1 Jan 2000 12:00:00 +0000",           /* RFC 5322 date */
    "From a@b Sat Jan  1 12:00 2000",                    /* no seconds */
    "From \"odd sender\"@example.com Tue Dec 31 23:59:59 1999",
    "From a@b\tWed Feb 29 09:05:00 2012",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    cr_assert (rr_mbox_is_from_line (good[i], strlen (good[i])), "rejected: %s", good[i]);
}

Test (mbox, is_from_line_rejects_other_lines)
{
  const char *bad[] = {
    "From here on we go by train.",
    "From: x",
    "From: MAILER-DAEMON Fri Jul  8 12:08:34 2011",
    "From ",
    "From",
    "",
    "From 2001",
    ">From MAILER-DAEMON Fri Jul  8 12:08:34 2011",
    " From MAILER-DAEMON Fri Jul  8 12:08:34 2011",
    "from MAILER-DAEMON Fri Jul  8 12:08:34 2011",
    "From MAILER-DAEMON Fri Jul  8 2011",      /* no time */
    "From MAILER-DAEMON Fri 8 12:08:34 2011",  /* no month */
    "From MAILER-DAEMON Fri Jul  8 12:08:34",  /* no year */
    "From MAILER-DAEMON\nFri Jul  8 12:08:34 2011", /* the date is on the next line */
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    cr_assert_not (rr_mbox_is_from_line (bad[i], strlen (bad[i])), "accepted: %s", bad[i]);
}

Test (mbox, is_from_line_reads_only_len_bytes)
{
  const char *line = "From MAILER-DAEMON Fri Jul  8 12:08:34 2011";

  cr_assert (rr_mbox_is_from_line (line, strlen (line)));
  cr_assert_not (rr_mbox_is_from_line (line, strlen (line) - 5), "the year lies past len");
  cr_assert_not (rr_mbox_is_from_line (line, 4));
}

Test (mbox, sniff)
{
  cr_assert (rr_mbox_sniff ("", 0), "an empty file is an mbox");
  cr_assert (rr_mbox_sniff (BOM, 3), "a byte-order mark alone is an empty mbox");
  cr_assert (rr_mbox_sniff (BOM "From a@b Sat Jan  1 12:00 2000\n", 34));
  cr_assert (rr_mbox_sniff ("From a@b Sat Jan  1 12:00 2000\n", 31));
  cr_assert (rr_mbox_sniff ("From ", 5));
  cr_assert_not (rr_mbox_sniff ("From", 4));
  cr_assert_not (rr_mbox_sniff ("Subject: hi\n\ntext\n", 18));
  cr_assert_not (rr_mbox_sniff ("plain text\n", 11));
  cr_assert_not (rr_mbox_sniff (" From a@b", 9));
  cr_assert_not (rr_mbox_sniff (BOM "Subject: x\n", 14));
  cr_assert_not (rr_mbox_sniff ("\xEF\xBB", 2), "a truncated byte-order mark");
  cr_assert_not (rr_mbox_sniff ("From a@b", 4), "only len bytes count");
}

/* Opening */

Test (mbox, open_refuses_a_file_that_is_not_an_mbox)
{
  const char *text = "Subject: hi\n\nFrom a@b Sat Jan  1 12:00:00 2000\n";
  g_autofree char *path = write_file ("notmbox", text, strlen (text));
  GError *error = NULL;
  int fd = open (path, O_RDONLY);

  cr_assert (fd >= 0);
  cr_assert_null (rr_mbox_open (path, fd, &error));
  cr_assert (g_error_matches (error, RR_MBOX_ERROR, RR_MBOX_ERROR_NOT_MBOX), "%s",
             error ? error->message : "no error");
  cr_assert_not_null (strstr (error->message, path), "the error names the file: %s",
                      error->message);
  g_error_free (error);
  close (fd);
}

Test (mbox, open_reports_a_read_error_with_the_path)
{
  GError *error = NULL;
  int fd = open (tmpdir, O_RDONLY | O_DIRECTORY);

  cr_assert (fd >= 0);
  cr_assert_null (rr_mbox_open (tmpdir, fd, &error), "read(2) on a directory fails");
  cr_assert_not_null (error);
  cr_assert_eq (error->domain, G_IO_ERROR, "%s", error->message);
  cr_assert_not_null (strstr (error->message, tmpdir), "%s", error->message);
  g_error_free (error);
  close (fd);
}

Test (mbox, empty_file_and_lone_bom_have_no_messages)
{
  const char *bodies[] = { "", BOM };

  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
      g_autofree char *path = write_file ("empty", bodies[i], strlen (bodies[i]));
      g_autoptr (GArray) msgs = split_path (path, warnings);
      cr_assert_eq (msgs->len, 0, "case %u: %u messages", i, msgs->len);
      cr_assert_eq (warnings->len, 0);
    }
}

/* Splitting */

Test (mbox, offsets_and_bytes_reproduce_the_file)
{
  const char *pieces[] = {
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nSubject: one\n\nfirst\n\n",
    "From - Mon Jan 01 00:00:00 2001\nSubject: two\n\nsecond\nline\n\n",
    "From a@b Sat, 1 Jan 2000 12:00:00 +0000\nSubject: three\n\nthird\n",
  };
  const gsize seps[] = { 1, 1, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces (BOM, pieces, 3, warnings);
  g_autofree char *file = NULL;
  gsize file_len;
  g_autoptr (GString) joined = g_string_new (BOM);
  g_autofree char *path = g_build_filename (tmpdir, "mbox", NULL);

  assert_sep_lens (msgs, seps);
  cr_assert_eq (msg_at (msgs, 0)->offset, 3, "the byte-order mark is outside any message");
  cr_assert_eq (warnings->len, 0);
  for (guint i = 0; i < msgs->len; i++)
    {
      gsize len;
      const char *data = g_bytes_get_data (msg_at (msgs, i)->bytes, &len);
      g_string_append_len (joined, data, len);
    }
  cr_assert (g_file_get_contents (path, &file, &file_len, NULL));
  assert_bytes (joined->str, joined->len, file, file_len, "concatenation");
}

Test (mbox, body_lines_starting_with_from_are_not_boundaries)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nSubject: one\n\n"
    "From here on we go by train.\n"
    ">From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"
    "From 2001 to 2011 at 12:08\n"
    "From:\n\n",
    "From c@d Fri Jul  8 12:08:35 2011\nSubject: two\n\nFrom me\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  cr_assert_eq (warnings->len, 0);
}

Test (mbox, from_line_without_blank_line_before_it)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nSubject: one\n\nno blank line follows\n",
    "From a@b Fri Jul  8 12:08:35 2011\nSubject: two\n\ntwo\n",
  };
  const gsize seps[] = { 0, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  assert_sep_lens (msgs, seps);
}

Test (mbox, crlf_messages)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\r\nSubject: one\r\n\r\nbody\r\nFrom here\r\n\r\n",
    "From a@b Fri Jul  8 12:08:35 2011\r\nSubject: two\r\n\r\nbody\r\n\r\n",
    "From a@b Fri Jul  8 12:08:36 2011\r\nSubject: three\r\n\r\nlast\r\n",
  };
  const gsize seps[] = { 2, 2, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 3, warnings);

  assert_sep_lens (msgs, seps);
  cr_assert_eq (msg_at (msgs, 0)->from_len, strlen ("From a@b Fri Jul  8 12:08:34 2011\r\n"));
}

Test (mbox, last_message_without_final_newline)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nSubject: one\n\none\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nSubject: two\n\nno newline at the end",
  };
  const gsize seps[] = { 1, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  assert_sep_lens (msgs, seps);
}

Test (mbox, lone_from_line_without_newline)
{
  const char *pieces[] = { "From a@b Fri Jul  8 12:08:34 2011" };
  const gsize seps[] = { 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 1, warnings);

  assert_sep_lens (msgs, seps);
  cr_assert_eq (msg_at (msgs, 0)->from_len, strlen (pieces[0]));
}

/* Old Netscape mboxes write a bare "From - " line: it is a boundary only
 * after a blank line and before a header field. */
Test (mbox, bare_from_line_after_blank_line_before_a_field)
{
  const char *pieces[] = {
    "From - \nX-Mozilla-Status: 0001\nSubject: one\n\none\n\n",
    "From - \nX-Mozilla-Status: 0001\nSubject: two\n\n"
    "From here on we go by train.\n"   /* no blank line before it */
    "\n"
    "From there we walked:\n"          /* a text line follows, not a field */
    "the rest of the way\n\n"
    "From our site:\n"                 /* a URL is not a field either */
    "https://adatum.com/merger\n\n",
    "From - \r\nSubject: three\r\n\r\nthree\r\n",
  };
  const gsize seps[] = { 1, 1, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 3, warnings);

  assert_sep_lens (msgs, seps);
}

/* Found in GMime's substring.mbox: Netscape's bare "From - " marker right
 * after a body line, with no blank line, still starts a message when a
 * header field follows it; any other undated "From " line there does not. */
Test (mbox, netscape_marker_without_blank_line)
{
  const char *pieces[] = {
    "From - \nSubject: one\n\nbody\n",
    "From - \nFrom: fejj@gnome.org\nSubject: two\n\nbody\nFrom here on:\nTo: nobody\n",
  };
  const gsize seps[] = { 0, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  assert_sep_lens (msgs, seps);
}

/* A message that is only its From_ line, directly followed by the next
 * From_ line, is still a message of its own. */
Test (mbox, from_line_directly_after_from_line)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\n",
    "From a@b Fri Jul  8 12:08:35 2011\nSubject: two\n\ntwo\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  cr_assert_eq (msg_at (msgs, 0)->sep_len, 0);
}

/* Content-Length (mboxcl, mboxcl2) */

Test (mbox, content_length_protects_an_unescaped_from_line)
{
  /* body: 44 + 5 = 49 bytes */
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nContent-Length: 49\nSubject: one\n\n"
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nbody\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nSubject: two\n\ntwo\n",
  };
  const gsize seps[] = { 1, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  assert_sep_lens (msgs, seps);
  cr_assert_eq (warnings->len, 0, "%s", warnings->len ? (char *) warnings->pdata[0] : "");
}

/* Found in a real Netscape spool (MimeKit's content-length.mbox.txt): the
 * length stops before the body's last newline, and the next From_ line has
 * no date. Both messages must still be found, with no warning. */
Test (mbox, content_length_short_of_the_last_newline_before_bare_from)
{
  const char *pieces[] = {
    "From - \nContent-Length: 9\nSubject: one\n\nFrom here\n",
    "From - \nSubject: two\n\ntwo\n",
  };
  const gsize seps[] = { 0, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  assert_sep_lens (msgs, seps);
  cr_assert_eq (warnings->len, 0, "%s", warnings->len ? (char *) warnings->pdata[0] : "");
}

Test (mbox, content_length_mboxcl2_crlf_without_separator)
{
  /* body: 45 + 6 = 51 bytes, the next From_ line follows at once */
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\r\ncontent-length:   51  \r\n\r\n"
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\r\nbody\r\n",
    "From a@b Fri Jul  8 12:08:35 2011\r\nContent-Length: 6\r\n\r\nlast\r\n",
  };
  const gsize seps[] = { 0, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  assert_sep_lens (msgs, seps);
  cr_assert_eq (warnings->len, 0, "%s", warnings->len ? (char *) warnings->pdata[0] : "");
}

Test (mbox, content_length_zero)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nContent-Length: 0\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nContent-Length: 0\n\n\n",
    "From a@b Fri Jul  8 12:08:36 2011\nContent-Length: 0\n\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 3, warnings);

  cr_assert_eq (warnings->len, 0, "%s", warnings->len ? (char *) warnings->pdata[0] : "");
  cr_assert_eq (msg_at (msgs, 1)->sep_len, 1);
}

Test (mbox, lying_content_length_is_ignored_with_one_warning)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nSubject: one\n\none\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nContent-Length: 5\n\nmuch longer than five\n\n",
    "From a@b Fri Jul  8 12:08:36 2011\nSubject: three\n\nthree\n",
  };
  const gsize seps[] = { 1, 1, 0 };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 3, warnings);
  g_autofree char *offset = g_strdup_printf ("byte %zu:", strlen (pieces[0]));

  assert_sep_lens (msgs, seps);
  cr_assert_eq (warnings->len, 1, "%u warnings", warnings->len);
  cr_assert_not_null (strstr (warnings->pdata[0], offset), "not naming %s: %s", offset,
                      (char *) warnings->pdata[0]);
  cr_assert_not_null (strstr (warnings->pdata[0], tmpdir), "not naming the file: %s",
                      (char *) warnings->pdata[0]);
}

Test (mbox, content_length_ending_exactly_at_eof)
{
  /* body: 44 + 10 = 54 bytes, to the last byte of the file */
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nSubject: one\n\none\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nContent-Length: 54\n\n"
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nlast line\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  cr_assert_eq (warnings->len, 0, "%s", warnings->len ? (char *) warnings->pdata[0] : "");
}

Test (mbox, content_length_past_eof_is_ignored)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nContent-Length: 100000\n\none\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nContent-Length: 18446744073709551615\n\ntwo\n\n",
    "From a@b Fri Jul  8 12:08:36 2011\nSubject: three\n\nthree\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 3, warnings);

  cr_assert_eq (warnings->len, 2, "%u warnings", warnings->len);
  cr_assert_not_null (strstr (warnings->pdata[0], "byte 0:"), "%s", (char *) warnings->pdata[0]);
}

/* A Content-Length that lands in the middle of a line is not a boundary, even
 * when the rest of that line looks like a From_ line. */
Test (mbox, content_length_landing_mid_line_is_ignored)
{
  /* the body "see From a@b ..." : Content-Length 4 lands on its "From" */
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nContent-Length: 4\n\n"
    "see From a@b Fri Jul  8 12:08:34 2011 in the log\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nSubject: two\n\ntwo\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  cr_assert_eq (warnings->len, 1, "%u warnings", warnings->len);
}

Test (mbox, content_length_in_the_body_is_not_a_field)
{
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:34 2011\nSubject: one\n\nContent-Length: 2\nFrom me\n\n",
    "From a@b Fri Jul  8 12:08:35 2011\nSubject: two\n\ntwo\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);

  cr_assert_eq (warnings->len, 0, "%s", warnings->len ? (char *) warnings->pdata[0] : "");
}

/* Sizes past the read chunk */

/* (transfer full) A message of exactly @len bytes: From_ line, a header, a
 * body of lines of 'x', ending with "\n". */
static char *
message_of_length (gsize len, const char *from)
{
  GString *s = g_string_new (from);

  g_string_append (s, "Subject: filler\n\n");
  cr_assert (s->len < len);
  while (s->len < len)
    g_string_append_c (s, (s->len + 1) % 64 == 0 || s->len + 1 == len ? '\n' : 'x');
  return g_string_free (s, FALSE);
}

Test (mbox, message_larger_than_the_read_chunk)
{
  g_autofree char *big = message_of_length (1024 * 1024 + 17,
                                            "From a@b Fri Jul  8 12:08:34 2011\n");
  g_autofree char *big2 = message_of_length (3 * CHUNK, "From a@b Fri Jul  8 12:08:35 2011\n");
  const char *pieces[] = {
    "From a@b Fri Jul  8 12:08:33 2011\nSubject: small\n\nsmall\n",
    big,
    big2,
    "From a@b Fri Jul  8 12:08:36 2011\nSubject: small\n\nsmall\n",
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) msgs = split_pieces ("", pieces, 4, warnings);
}

Test (mbox, from_line_straddling_the_chunk_boundary)
{
  /* "\nFrom " starting at CHUNK - d: with d = 3, "\nFr" lies in the first
   * read and "om " in the second; larger d put the date across it. */
  const guint ds[] = { 1, 2, 3, 4, 5, 6, 7, 12, 30, 40, 60 };

  for (guint k = 0; k < G_N_ELEMENTS (ds); k++)
    {
      g_autofree char *first = message_of_length (CHUNK - ds[k] + 1,
                                                   "From a@b Fri Jul  8 12:08:34 2011\n");
      const char *pieces[] = { first, "From MAILER-DAEMON Fri Jul  8 12:08:35 2011\n"
                                      "Subject: two\n\ntwo\n" };
      g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
      g_autoptr (GArray) msgs = NULL;

      cr_assert_eq (strlen (first) - 1, (gsize) CHUNK - ds[k], "d = %u", ds[k]);
      msgs = split_pieces ("", pieces, 2, warnings);
    }
}

Test (mbox, body_from_straddling_the_chunk_boundary_is_not_a_boundary)
{
  const guint ds[] = { 3, 6, 12 };

  for (guint k = 0; k < G_N_ELEMENTS (ds); k++)
    {
      g_autofree char *head = message_of_length (CHUNK - ds[k] + 1,
                                                 "From a@b Fri Jul  8 12:08:34 2011\n");
      g_autofree char *first = g_strconcat (head, "From here on the body goes on\n\n", NULL);
      const char *pieces[] = { first, "From c@d Fri Jul  8 12:08:35 2011\nSubject: two\n\n2\n" };
      g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
      g_autoptr (GArray) msgs = split_pieces ("", pieces, 2, warnings);
    }
}

static glong
max_rss_kb (void)
{
  struct rusage ru;

  cr_assert_eq (getrusage (RUSAGE_SELF, &ru), 0);
  return ru.ru_maxrss;
}

/* 50 MiB of 1 KiB messages, streamed: every offset and every byte is
 * checked, and the peak RSS must not grow by anything near the file size. */
Test (mbox, fifty_megabytes_of_small_messages, .timeout = 60)
{
  const guint count = 50 * 1024;
  g_autofree char *path = g_build_filename (tmpdir, "big.mbox", NULL);
  g_autofree char *msg = message_of_length (1023, "From a@b Fri Jul  8 12:08:34 2011\n"
                                                  "Subject: 00000000\n\n");
  const gsize num_at = strlen ("From a@b Fri Jul  8 12:08:34 2011\nSubject: ");
  char want[1024];
  FILE *f = fopen (path, "w");
  GError *error = NULL;
  RrMboxMessage m;
  glong rss_before;
  guint n = 0;
  int fd, r;

  /* message i: 1023 bytes with i in its Subject, then the blank line */
  memcpy (want, msg, 1023);
  want[1023] = '\n';
  cr_assert_not_null (f);
  for (guint i = 0; i < count; i++)
    {
      char num[9];
      g_snprintf (num, sizeof num, "%08u", i);
      memcpy (want + num_at, num, 8);
      cr_assert_eq (fwrite (want, 1, sizeof want, f), sizeof want);
    }
  cr_assert_eq (fclose (f), 0);

  rss_before = max_rss_kb ();
  fd = open (path, O_RDONLY);
  cr_assert (fd >= 0);
  g_autoptr (RrMbox) mb = rr_mbox_open (path, fd, &error);
  cr_assert_not_null (mb, "%s", error ? error->message : "");
  while ((r = rr_mbox_next (mb, &m, &error)) == 1)
    {
      char num[9];
      cr_assert_eq (m.offset, (guint64) n * sizeof want, "message %u at %" G_GUINT64_FORMAT, n,
                    m.offset);
      cr_assert_eq (m.len, sizeof want, "message %u: %zu bytes", n, m.len);
      g_snprintf (num, sizeof num, "%08u", n);
      memcpy (want + num_at, num, 8);
      cr_assert (memcmp (m.data, want, sizeof want) == 0, "message %u differs", n);
      cr_assert_eq (m.sep_len, 1);
      n++;
    }
  cr_assert_eq (r, 0, "%s", error ? error->message : "");
  cr_assert_eq (n, count, "%u messages", n);
  cr_assert_null (rr_mbox_take_warning (mb));
  cr_assert_lt (max_rss_kb () - rss_before, 16 * 1024, "peak RSS grew by %ld KiB",
                max_rss_kb () - rss_before);
  close (fd);
}

/* A Content-Length past the end of a large spool (any incoming message can
 * carry one) is ignored without reading the rest of the spool into memory. */
Test (mbox, lying_content_length_does_not_load_the_spool, .timeout = 60)
{
  const guint count = 20 * 1024;
  g_autofree char *path = g_build_filename (tmpdir, "lying.mbox", NULL);
  const char *first = "From a@b Fri Jul  8 12:08:34 2011\nContent-Length: 999999999999\n\nx\n\n";
  g_autofree char *msg = message_of_length (1024, "From a@b Fri Jul  8 12:08:35 2011\n");
  FILE *f = fopen (path, "w");
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  GError *error = NULL;
  RrMboxMessage m;
  glong rss_before;
  guint n = 0;
  int fd, r;

  cr_assert_not_null (f);
  cr_assert_eq (fwrite (first, 1, strlen (first), f), strlen (first));
  for (guint i = 0; i < count; i++)
    cr_assert_eq (fwrite (msg, 1, 1024, f), 1024);
  cr_assert_eq (fclose (f), 0);

  rss_before = max_rss_kb ();
  fd = open (path, O_RDONLY);
  cr_assert (fd >= 0);
  g_autoptr (RrMbox) mb = rr_mbox_open (path, fd, &error);
  cr_assert_not_null (mb, "%s", error ? error->message : "");
  while ((r = rr_mbox_next (mb, &m, &error)) == 1)
    {
      char *w;
      cr_assert_eq (m.len, n == 0 ? strlen (first) : 1024, "message %u: %zu bytes", n, m.len);
      while ((w = rr_mbox_take_warning (mb)) != NULL)
        g_ptr_array_add (warnings, w);
      n++;
    }
  cr_assert_eq (r, 0, "%s", error ? error->message : "");
  cr_assert_eq (n, count + 1);
  cr_assert_eq (warnings->len, 1);
  cr_assert_lt (max_rss_kb () - rss_before, 8 * 1024, "peak RSS grew by %ld KiB for a %u KiB spool",
                max_rss_kb () - rss_before, count);
  close (fd);
}
