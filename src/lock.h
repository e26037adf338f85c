/* lock.h - mailbox locking as MUAs and MDAs do it: a dotlock FILE.lock
 * holding our PID, then an fcntl write lock on the open file.
 *
 * DIAGNOSTICS
 *   rr_lock_acquire() fails with RR_LOCK_ERROR_BUSY when the lock is still
 *   held after @timeout seconds (the caller must touch nothing and report a
 *   temporary failure, EX_TEMPFAIL), and with RR_LOCK_ERROR_IO when the lock
 *   file cannot be made or read for another reason. A stale dotlock (its PID
 *   no longer runs on this host, or it is older than @stale seconds) is taken
 *   over, and rr_lock_get_notice() says so for the log. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RR_LOCK_ERROR (rr_lock_error_quark ())
GQuark rr_lock_error_quark (void);

typedef enum {
  RR_LOCK_ERROR_BUSY,
  RR_LOCK_ERROR_IO,
} RrLockError;

typedef struct _RrLock RrLock;

/* Locks @path: dotlock @path.lock, then fcntl on @fd when @fd >= 0.
 * (transfer full) */
RrLock *rr_lock_acquire (const char *path, int fd, guint timeout, guint stale,
                         GError **error);
/* Takes only an fcntl lock on @fd (a run lock file). */
RrLock *rr_lock_acquire_fcntl (const char *path, int fd, guint timeout, GError **error);
/* Removes @path.lock if it is stale (its PID gone, or older than @stale s). */
void rr_lock_clear_stale (const char *path, guint stale);

/* A lock that holds nothing, for a run that must not lock (dry run). */
RrLock *rr_lock_acquire_none (void);
/* Releases the fcntl lock, then removes the dotlock. NULL is a no-op. */
void rr_lock_release (RrLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrLock, rr_lock_release)

/* A line to log when a stale lock was taken over, else NULL (transfer none). */
const char *rr_lock_get_notice (const RrLock *lock);

G_END_DECLS
