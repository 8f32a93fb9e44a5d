/* F_SETSIG, O_ASYNC and siginfo's si_fd are Linux (and GNU) extensions. */
#define _GNU_SOURCE
#include "coldsig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#if defined(F_SETSIG) && defined(O_ASYNC) && defined(SIGRTMIN)

static int notes[2] = {-1, -1};         /* the handler writes, the loop reads */
static int note_sig;                    /* the real-time signal used */
static pid_t owner;
static volatile sig_atomic_t notes_lost; /* the pipe was full */

/* Async-signal-safe: one write of one int, which a pipe takes whole or
 * not at all (under PIPE_BUF); errno is kept for the code interrupted. */
static void on_note(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    int fd = sig == note_sig ? si->si_fd : -1;
    if (write(notes[1], &fd, sizeof fd) != (ssize_t)sizeof fd)
        notes_lost = 1;
    errno = saved;
}

static int set_handler(int sig, bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (on) {
        sa.sa_sigaction = on_note;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
    } else {
        sa.sa_handler = SIG_IGN;
    }
    return sigaction(sig, &sa, NULL);
}

int coldsig_init(void)
{
    if (notes[0] >= 0)
        return notes[0];
    if (pipe(notes) < 0)
        return notes[0] = notes[1] = -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(notes[i], F_SETFL, O_NONBLOCK) < 0 || fcntl(notes[i], F_SETFD, FD_CLOEXEC) < 0)
            goto fail;
    note_sig = SIGRTMIN + 1;
    owner = getpid();
    notes_lost = 0;
    if (set_handler(note_sig, true) < 0 || set_handler(SIGIO, true) < 0)
        goto fail;
    return notes[0];
fail:
    coldsig_free();
    return -1;
}

void coldsig_free(void)
{
    if (notes[0] < 0)
        return;
    set_handler(note_sig, false);
    set_handler(SIGIO, false);
    close(notes[0]);
    close(notes[1]);
    notes[0] = notes[1] = -1;
}

int coldsig_arm(int fd, int *flags)
{
    if (notes[0] < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETOWN, owner) < 0 || fcntl(fd, F_SETSIG, note_sig) < 0 ||
        fcntl(fd, F_SETFL, fl | O_ASYNC) < 0)
        return -1;
    *flags = fl & ~O_ASYNC;
    return 0;
}

void coldsig_disarm(int fd, int flags)
{
    fcntl(fd, F_SETFL, flags);
}

size_t coldsig_read(int *fds, size_t max, bool *lost)
{
    *lost = false;
    if (notes_lost) {
        notes_lost = 0;
        *lost = true;
    }
    if (notes[0] < 0 || max == 0)
        return 0;
    /* Every write is one whole int, so a read returns whole ones. */
    ssize_t n = read(notes[0], fds, max * sizeof *fds);
    return n > 0 ? (size_t)n / sizeof *fds : 0;
}

#else

int coldsig_init(void)
{
    return -1;
}

void coldsig_free(void)
{
}

int coldsig_arm(int fd, int *flags)
{
    (void)fd;
    (void)flags;
    return -1;
}

void coldsig_disarm(int fd, int flags)
{
    (void)fd;
    (void)flags;
}

size_t coldsig_read(int *fds, size_t max, bool *lost)
{
    (void)fds;
    (void)max;
    *lost = false;
    return 0;
}

#endif
