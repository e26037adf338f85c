/* deliver.h - putting one message into a mailbox: template expansion with
 * path safety, Maildir delivery by the Maildir protocol, mbox append under
 * the MUA/MDA locks.
 *
 * DIAGNOSTICS
 *   rr_deliver_expand() fails with RR_DELIVER_ERROR_UNSAFE when an address
 *   part would leave the template's directory; the message must stay where it
 *   is. Directory creation fails with RR_DELIVER_ERROR_UNSAFE on a symlink or
 *   non-directory in the way, and with RR_DELIVER_ERROR_CREATE (errno kept)
 *   when a directory cannot be made. Writes fail with fsutil's G_IO_ERROR and
 *   lock waits with lock.c's RR_LOCK_ERROR_BUSY; nothing half-written stays:
 *   a Maildir temporary file is removed, an mbox is truncated back to where
 *   the append began. */
#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fsutil.h"

G_BEGIN_DECLS

#define RR_DELIVER_ERROR (rr_deliver_error_quark ())
GQuark rr_deliver_error_quark (void);

typedef enum {
  RR_DELIVER_ERROR_UNSAFE,
  RR_DELIVER_ERROR_CREATE,
} RrDeliverError;

typedef enum {
  RR_MBOX_FORMAT_RD,
  RR_MBOX_FORMAT_O,
  RR_MBOX_FORMAT_CL,
  RR_MBOX_FORMAT_CL2,
} RrMboxFormat;

typedef struct {
  gboolean owner_set;   /* --owner given: created mailboxes belong to it */
  uid_t uid;
  gid_t gid;
  guint lock_timeout;
  guint stale_lock;
  RrMboxFormat format;
} RrDeliverOptions;

gboolean rr_mbox_format_parse (const char *name, RrMboxFormat *format);

/* The mailbox path for @address: %u local part, %d domain, %a address, %%.
 * (transfer full) */
char *rr_deliver_expand (const char *template, const char *address, GError **error);

/* The directory of @template that no expansion can change: everything up to
 * the last '/' before the first '%'. (transfer full) */
char *rr_deliver_template_root (const char *template);

/* Creates what is missing of @path below @root (which is made with its parents
 * if missing), never following a symlink below @root. With @maildir, @path
 * becomes a Maildir with cur/ new/ tmp/; otherwise only its parent directory
 * is made. Created directories are 0700 and owned as RrDeliverOptions says. */
gboolean rr_deliver_prepare (const char *root, const char *path, gboolean maildir,
                             const RrDeliverOptions *options, GError **error);

/* Writes @data under @dir/tmp/ (not yet synced), owned like @dir when root.
 * (transfer full) */
RrNewFile *rr_deliver_maildir_write (const char *dir, const char *data, gsize len,
                                     GError **error);
/* The base names (info part cut off) of the messages in @dir's new/ and cur/,
 * as a set. (transfer full) */
GHashTable *rr_deliver_maildir_list (const char *dir);

/* Called with the mbox locked, its descriptor and the offset where the
 * append will begin, before anything is written; FALSE stops the append. */
typedef gboolean (*RrAppendHook) (int fd, guint64 offset, gpointer data, GError **error);

/* Appends the already-framed @data (From_ line, escaped body, separator) to
 * the mbox @path under its locks, creating it if missing; fsyncs it. */
gboolean rr_deliver_mbox_append (const char *path, const char *data, gsize len,
                                 const RrDeliverOptions *options, RrAppendHook hook,
                                 gpointer hook_data, GError **error);

/* @msg with Status and X-Status fields at its top that carry the Maildir
 * flags of @info (":2,FLAGS"), in the message's own line ending, as mutt,
 * Dovecot and other mbox readers keep flags. (transfer full) */
GString *rr_deliver_with_mbox_status (const char *info, const char *msg, gsize len);

/* Frames a message for an mbox: From_ line, body escaped for @format (and a
 * Content-Length for mboxcl/mboxcl2), blank separator line. */
void rr_deliver_mbox_frame (GString *out, const char *from_line, const char *msg, gsize len,
                            RrMboxFormat format);

G_END_DECLS
