/* refile.h - the refile action: deliver a rewritten message into the
 * mailbox of each canonical user, exactly once across crashes and reruns.
 *
 * Exactly once: a Maildir delivery gets a name derived from the source
 * message and the canonical address, and is skipped when that name is
 * already in the mailbox (link(2) also refuses to replace one). An mbox
 * delivery is written to a journal beside the source spool, under the
 * destination's lock and before the append, with the offset and length it
 * will have; a rerun finds the entry and checks those bytes. Sources are
 * removed by the caller only after every delivery is durable.
 *
 * In place: a message that already sits in the mailbox of one of its
 * canonical addresses (a cron job over the mail store itself) is not
 * delivered there again, or a Maildir message would get a new name on every
 * run (IMAP clients fetch it again) and one the user filed into a Maildir++
 * subfolder would be pulled back to the INBOX. rr_refile_elsewhere() says
 * which addresses still need it.
 *
 * DIAGNOSTICS
 *   rr_refile_deliver() fails with deliver.c's RR_DELIVER_ERROR_UNSAFE for a
 *   mailbox path an address part would make unsafe (bad data: the message
 *   stays), and with G_IO_ERROR, RR_DELIVER_ERROR_CREATE or RR_LOCK_ERROR_BUSY
 *   when a mailbox cannot be written now (the message stays; nothing partial
 *   is left). */
#pragma once

#include <glib.h>
#include <time.h>

#include "deliver.h"

G_BEGIN_DECLS

typedef struct {
  const char *template;      /* --deliver */
  const char *from;          /* --from, or NULL */
  RrDeliverOptions deliver;
} RrRefileOptions;

/* The mailbox a source message sits in, a Maildir folder or an mbox file,
 * known by device and inode: paths that differ by "//", "./" or symlinked
 * parents name the same mailbox. */
typedef struct _RrRefileHome RrRefileHome;

/* The mailbox at @path (a Maildir folder or an mbox file). One that cannot
 * be stat'ed is no destination's. (transfer full) */
RrRefileHome *rr_refile_home_new (const char *path);
void rr_refile_home_free (RrRefileHome *home);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrRefileHome, rr_refile_home_free)

/* Deliveries written ahead: see rr_refile_write_drafts(). */
typedef struct _RrRefileDrafts RrRefileDrafts;

/* Where a message comes from, as far as delivery cares. */
typedef struct {
  const char *key;         /* stable identity of the source message */
  time_t mtime;            /* goes into the Maildir name */
  const char *info;        /* ":2,FLAGS" for a message from a Maildir's cur/ */
  const char *from_line;   /* the source's own From_ line, or NULL */
  gsize from_line_len;
  gboolean unescape;       /* undo mbox ">From " escaping (an mbox source) */
  const RrRefileHome *home; /* the mailbox it is in, or NULL (standard input) */
  RrRefileDrafts *drafts;  /* its deliveries written ahead, or NULL */
} RrRefileSource;

typedef struct _RrRefile RrRefile;

/* @journal: the journal file for this source spool, or NULL for none (stdin).
 * (transfer full) */
RrRefile *rr_refile_new (const RrRefileOptions *options, const char *journal, GError **error);
void rr_refile_free (RrRefile *refile);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrRefile, rr_refile_free)

/* Delivers @msg (the rewritten message without any From_ line) to the mailbox
 * of every address in @canonical. TRUE when each has it, from before, or
 * queued for rr_refile_flush(). */
gboolean rr_refile_deliver (RrRefile *refile, const RrRefileSource *src,
                            const GPtrArray *canonical, const char *msg, gsize len,
                            GError **error);

/* For a Maildir template, in a worker thread: writes @msg (as it will be
 * passed to rr_refile_deliver() with @src), not yet synced, under the tmp/ of the
 * Maildir of each address of @to that this run has prepared already, so
 * that rr_refile_deliver(), given the drafts in its source, only publishes
 * them; a failure to write is reported there. NULL when nothing was
 * written. (transfer full) */
RrRefileDrafts *rr_refile_write_drafts (RrRefile *refile, const RrRefileSource *src,
                                        const GPtrArray *to, const char *msg, gsize len);
/* Removes the drafts that were not delivered. */
void rr_refile_drafts_free (RrRefileDrafts *drafts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrRefileDrafts, rr_refile_drafts_free)

/* Whether the last rr_refile_deliver() delivered anything that was not
 * there yet (a rerun over messages kept in the source delivers nothing). */
gboolean rr_refile_was_fresh (const RrRefile *refile);

/* The addresses of @canonical whose mailbox @src is not in yet, in order.
 * A message already sits in the mailbox of an address when its home is that
 * mailbox: the same mbox file, or for a Maildir the Maildir itself or one of
 * its Maildir++ subfolders (a direct child named ".Name", where the user
 * filed it). Nothing is delivered for such an address: it has the message.
 * Fails like rr_refile_destinations(). (transfer container: the elements
 * are @canonical's) */
GPtrArray *rr_refile_elsewhere (const RrRefileOptions *options, const RrRefileSource *src,
                                const GPtrArray *canonical, GError **error);

/* The mailbox paths @canonical's addresses go to. (transfer full) */
char **rr_refile_destinations (const RrRefileOptions *options, const GPtrArray *canonical,
                               GError **error);

/* Makes the Maildir deliveries made since the last flush durable and
 * publishes them (one file-system sync for the batch, one fsync per
 * directory). Sources may be removed only after this returned TRUE; on
 * FALSE, the unpublished deliveries of the batch are dropped. mbox
 * deliveries are durable as soon as rr_refile_deliver() returns. */
gboolean rr_refile_flush (RrRefile *refile, GError **error);

/* How many Maildir deliveries wait for rr_refile_flush(). */
guint rr_refile_pending (const RrRefile *refile);

/* Marks @src's journal entries as still needed: its message stays. */
void rr_refile_keep (RrRefile *refile, const RrRefileSource *src, const GPtrArray *canonical);

/* Ends the run over the spool: when @complete, the journal keeps only the
 * entries marked by rr_refile_keep (none: it is removed). */
gboolean rr_refile_finish (RrRefile *refile, gboolean complete, GError **error);

G_END_DECLS
