/* mbox.h - reading mbox files one message at a time.
 *
 * Boundaries are found here, not by GMime's mbox mode (which ends a message
 * at any line starting "From ": GMIME-NOTES.md). A boundary is a line that
 * starts "From " and carries an asctime-like date; a Content-Length field
 * (mboxcl, mboxcl2) is honoured when it lands exactly on a boundary or the
 * end of the file, and ignored with a warning otherwise. mboxo, mboxrd,
 * mboxcl and mboxcl2 files are all read this way; escaping (">From ") is left
 * as it is, since an in-place rewrite must not change it.
 *
 * Memory: the reader holds at most one message plus one read chunk.
 *
 * DIAGNOSTICS
 *   rr_mbox_next() fails with a G_IO_ERROR when the file cannot be read; a
 *   file that does not start with a From_ line is refused by rr_mbox_open()
 *   with RR_MBOX_ERROR_NOT_MBOX. Warnings (a lying Content-Length) are kept
 *   for the caller: rr_mbox_take_warning(). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RR_MBOX_ERROR (rr_mbox_error_quark ())
GQuark rr_mbox_error_quark (void);

typedef enum {
  RR_MBOX_ERROR_NOT_MBOX,
} RrMboxError;

typedef struct {
  guint64 offset;   /* of the From_ line in the file */
  const char *data; /* From_ line through the byte before the next From_ */
  gsize len;
  gsize from_len;   /* the From_ line, newline included */
  gsize sep_len;    /* trailing blank line that separates it from the next */
} RrMboxMessage;

typedef struct _RrMbox RrMbox;

/* Reads from @fd (not closed by the reader). A file that is empty or starts
 * with a From_ line, after an optional byte-order mark, is an mbox. */
RrMbox *rr_mbox_open (const char *path, int fd, GError **error);
void rr_mbox_free (RrMbox *mbox);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrMbox, rr_mbox_free)

/* 1 and *msg filled (valid until the next call), 0 at the end, -1 on error. */
int rr_mbox_next (RrMbox *mbox, RrMboxMessage *msg, GError **error);

/* The next pending warning, or NULL (transfer full). */
char *rr_mbox_take_warning (RrMbox *mbox);

/* Whether @line (up to @len bytes, no newline needed) is a From_ line. */
gboolean rr_mbox_is_from_line (const char *line, gsize len);

/* Whether the first bytes of a file (@len of them) make it an mbox. */
gboolean rr_mbox_sniff (const char *head, gsize len);

G_END_DECLS
