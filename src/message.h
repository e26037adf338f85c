/* message.h - one message held as the caller's bytes, with its header block
 * split into fields and its recipients found through GMime's address parser.
 *
 * The message never copies or changes the bytes it is given: a spool reader
 * hands it a Maildir file, an mmapped mbox slice (From_ line included) or a
 * stdin buffer, which must outlive the RrMessage. Everything it reports is a
 * byte span into those bytes, so a rewrite can copy the original around the
 * few bytes it changes (GMime's writer is not byte-faithful: see
 * GMIME-NOTES.md).
 *
 * DIAGNOSTICS
 *   rr_message_new() fails with RR_MESSAGE_ERROR_EMPTY for no bytes and
 *   RR_MESSAGE_ERROR_NOT_MESSAGE when the first line (after an optional
 *   byte-order mark and From_ line) is not a header field; the message is then
 *   to be left as it is and reported with its place. Recipient fields that do
 *   not parse are returned flagged, not as errors: the caller judges whether
 *   they matter (see RrRecipient.bad). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RR_MESSAGE_ERROR (rr_message_error_quark ())
GQuark rr_message_error_quark (void);

typedef enum {
  RR_MESSAGE_ERROR_EMPTY,
  RR_MESSAGE_ERROR_NOT_MESSAGE,
} RrMessageError;

/* One header field: [start, end) covers the name through the line ending of
 * its last line; value is the offset just past the colon. */
typedef struct {
  gsize start;
  gsize value;
  gsize end;
} RrField;

/* One recipient address. For a field that did not parse, bad is TRUE, address
 * holds the reason and [start, end) the whole field; the caller decides
 * whether that field could matter. Given (--recipient) addresses have
 * start == end == 0 and header "--recipient". */
typedef struct {
  char *address;      /* addr-spec, CFWS removed */
  const char *header; /* canonical field name, static */
  gsize start;        /* span of the addr-spec in the message bytes */
  gsize end;
  gboolean bad;
} RrRecipient;

typedef struct _RrMessage RrMessage;

/* (transfer full) @data is borrowed and must outlive the message. */
RrMessage *rr_message_new (const char *data, gsize len, GError **error);
void rr_message_free (RrMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrMessage, rr_message_free)

const char *rr_message_get_data (const RrMessage *msg);
gsize rr_message_get_length (const RrMessage *msg);

/* Offset where the header block starts (after BOM and From_ line): new header
 * fields are inserted here. */
gsize rr_message_get_header_start (const RrMessage *msg);
/* Offset just past the header block (the blank line is not included). */
gsize rr_message_get_header_end (const RrMessage *msg);
/* The message's own line ending, "\n" or "\r\n" (transfer none). */
const char *rr_message_get_eol (const RrMessage *msg);

/* The @nth (0-based) field named @name (case-insensitive), or FALSE. */
gboolean rr_message_get_field (const RrMessage *msg, const char *name,
                               guint nth, RrField *field);

/* (transfer full) The Message-ID without its angle brackets, or NULL. */
char *rr_message_get_message_id (const RrMessage *msg);

/* Appends the envelope recipients: every address of the topmost field of the
 * first of Delivered-To, X-Original-To, Envelope-To, X-Envelope-To present.
 * Returns FALSE when none is present (then nothing is appended). */
gboolean rr_message_get_envelope (const RrMessage *msg, GArray *recipients);
/* Appends the addresses of every To and Cc field, in order. */
void rr_message_get_visible (const RrMessage *msg, GArray *recipients);

/* The Date field as a time, or 0 when missing or unreadable. */
gint64 rr_message_get_date (const RrMessage *msg);

/* Whether an X-Rerouted-From field holds @address (compared folded). */
gboolean rr_message_has_trace (const RrMessage *msg, const char *address);

/* (transfer full) An array with clear func set, for the two getters above. */
GArray *rr_recipients_new (void);

G_END_DECLS
