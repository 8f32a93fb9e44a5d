/* coldsig: the kernel says when a cold fd has something, instead of the
 * loop asking every fd of the cold set every few milliseconds.
 *
 * Looking at an idle socket costs the kernel a cache miss or two (about
 * 0.3 us per fd on a virtual machine): 10,000 idle keep-alive clients
 * looked at every 10 ms took a quarter of a core.  An armed fd (O_ASYNC,
 * owned by this process, F_SETSIG) makes the kernel queue a real-time
 * signal carrying its number when input, a hang-up or an error arrives;
 * the handler writes that number into a pipe the loop watches.  When the
 * signal queue overflows the kernel sends SIGIO instead: the handler
 * writes -1, and the loop then looks at the whole cold set once.
 *
 * Where F_SETSIG does not exist (it is Linux's), coldsig_init fails and
 * the loop keeps looking at the cold set every LOOP_COLD_SCAN_MS. */
#ifndef AUTOSWITCH_COLDSIG_H
#define AUTOSWITCH_COLDSIG_H

#include <stdbool.h>
#include <stddef.h>

/* Install the handlers and make the pipe: its read end (non-blocking),
 * or -1 when this platform or process cannot. */
int coldsig_init(void);
/* Back to no handlers, pipe closed (armed fds must be disarmed first). */
void coldsig_free(void);

/* Signal on fd's next input, hang-up or error.  0 and the fd's status
 * flags before (for coldsig_disarm), or -1 (fd left as it was). */
int coldsig_arm(int fd, int *flags);
/* No more signals for fd: its status flags back to what arm saw. */
void coldsig_disarm(int fd, int flags);

/* The fds signalled since the last call, up to max, into fds; -1 among
 * them (or *lost) means some were not recorded: look at every cold fd. */
size_t coldsig_read(int *fds, size_t max, bool *lost);

#endif
