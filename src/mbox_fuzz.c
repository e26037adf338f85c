/* mbox_fuzz.c - fuzzing harness for the streaming mbox reader over a whole
 * file.
 *
 * Input: the file's bytes. They are written to a memory file (memfd), since
 * the reader reads a descriptor and peeks at Content-Length boundaries with
 * fstat and pread. Built for fuzzing and for `make check`, mbox.c is
 * compiled with a tiny read size (RR_MBOX_CHUNK, see Makefile.am), so that
 * small inputs cross the reader's window boundaries as large spools do.
 *
 * Invariants checked (mbox.h, and what batch.c relies on to rewrite an mbox
 * by copying it message by message):
 *   - rr_mbox_open() refuses exactly the files rr_mbox_sniff() refuses;
 *   - the messages tile the file: the first starts at 0 (3 after a
 *     byte-order mark), each starts where the one before ended, the last
 *     ends at the end of the file, and each one's bytes are the file's;
 *   - each message starts with "From ", its From_ line and separator lie
 *     within it;
 *   - a message read on its own is one message, the same bytes: a rewrite
 *     that writes the messages back one by one splits the same way again. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "mbox.h"

static int file_fd = -1;
static int alone_fd = -1;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  file_fd = memfd_create ("mbox_fuzz", MFD_CLOEXEC);
  alone_fd = memfd_create ("mbox_fuzz_alone", MFD_CLOEXEC);
  FUZZ_CHECK (file_fd >= 0 && alone_fd >= 0);
  return 0;
}

/* Makes @fd hold exactly @len bytes of @data, read from the start. */
static void
fill (int fd, const uint8_t *data, size_t len)
{
  size_t done = 0;

  FUZZ_CHECK (ftruncate (fd, 0) == 0);
  while (done < len)
    {
      ssize_t n = pwrite (fd, data + done, len - done, done);
      if (n < 0 && errno == EINTR)
        continue;
      FUZZ_CHECK (n > 0);
      done += n;
    }
  FUZZ_CHECK (lseek (fd, 0, SEEK_SET) == 0);
}

static void
drain_warnings (RrMbox *mb)
{
  char *w;

  while ((w = rr_mbox_take_warning (mb)) != NULL)
    g_free (w);
}

/* The message read from a file of its own bytes alone. */
static void
check_alone (const RrMboxMessage *m)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RrMbox) mb = NULL;
  RrMboxMessage again;

  fill (alone_fd, (const uint8_t *) m->data, m->len);
  mb = rr_mbox_open ("alone", alone_fd, &error);
  FUZZ_CHECK (mb != NULL);
  FUZZ_CHECK (rr_mbox_next (mb, &again, &error) == 1);
  FUZZ_CHECK (again.offset == 0 && again.len == m->len);
  FUZZ_CHECK (again.from_len == m->from_len && again.sep_len == m->sep_len);
  FUZZ_CHECK (rr_mbox_next (mb, &again, &error) == 0);
  drain_warnings (mb);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RrMbox) mb = NULL;
  g_autoptr (GArray) copies = g_array_new (FALSE, FALSE, sizeof (RrMboxMessage));
  gboolean bom = size >= 3 && memcmp (data, "\xEF\xBB\xBF", 3) == 0;
  guint64 next;
  RrMboxMessage m;
  int got;

  fill (file_fd, data, size);
  mb = rr_mbox_open ("fuzz.mbox", file_fd, &error);
  FUZZ_CHECK ((mb != NULL) == rr_mbox_sniff ((const char *) data, size));
  if (mb == NULL)
    {
      FUZZ_CHECK (error && error->domain == RR_MBOX_ERROR);
      return 0;
    }

  next = bom ? 3 : 0;
  while ((got = rr_mbox_next (mb, &m, &error)) > 0)
    {
      FUZZ_CHECK (m.offset == next);
      FUZZ_CHECK (m.len > 0 && m.offset + m.len <= size);
      FUZZ_CHECK (memcmp (m.data, data + m.offset, m.len) == 0);
      FUZZ_CHECK (m.len >= 5 && memcmp (m.data, "From ", 5) == 0);
      FUZZ_CHECK (m.from_len > 0 && m.from_len <= m.len);
      FUZZ_CHECK (m.sep_len <= m.len - m.from_len);
      next = m.offset + m.len;
      drain_warnings (mb);
      /* m.data is valid only until the next call: keep the offsets. */
      g_array_append_val (copies, m);
      g_array_index (copies, RrMboxMessage, copies->len - 1).data = NULL;
    }
  FUZZ_CHECK (got == 0);
  FUZZ_CHECK (next == size);
  drain_warnings (mb);

  for (guint i = 0; i < copies->len; i++)
    {
      RrMboxMessage *c = &g_array_index (copies, RrMboxMessage, i);
      c->data = (const char *) data + c->offset;
      check_alone (c);
    }
  return 0;
}
