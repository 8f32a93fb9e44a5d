/* atomic_file: replace a file's contents; the contract is in the header.
 *
 * The order of the steps is the whole point:
 *   1. prepare     follow symlinks, refuse a file we may not write
 *   2. data_temp   the new contents, durable, in <real>.tmpXXXXXX
 *   3. backup_temp the old contents, durable, in <path>.bak.tmpXXXXXX
 *   4. rename_over (or in_place when the file cannot be renamed over)
 *   5. commit_backup, only once the file holds the new contents
 * Up to the end of step 4 a failure undoes what was done (temp files
 * unlinked, an in-place rewrite written back), so -1 leaves the file and
 * the .bak as they were.  Step 5 comes last so that even the .bak is
 * never touched by a failed save; the old contents are durable in the
 * backup temp before the file changes, so a crash loses nothing. */
#include "atomic_file.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOTE_MAX (3 * ATOMIC_FILE_PATH_MAX)   /* a reason naming up to three paths */
#define TMP_SUFFIX ".tmpXXXXXX"                /* mkstemp's template */
#define READ_CHUNK 65536                       /* bytes read from the old file at a time */

struct job {
    const char *path;                    /* as the caller named it */
    char real[ATOMIC_FILE_PATH_MAX];     /* path after symlinks: the file written */
    char bak[ATOMIC_FILE_PATH_MAX];      /* <path>.bak */
    char tmp[ATOMIC_FILE_PATH_MAX];      /* <real>.tmpXXXXXX while it exists, else "" */
    char bak_tmp[ATOMIC_FILE_PATH_MAX];  /* <path>.bak.tmpXXXXXX while it exists, else "" */
    bool exists;                         /* real exists; st is its lstat */
    struct stat st;
    struct buf old;                      /* real's contents, once read */
    bool have_old;
    bool in_place;                       /* step 4 went in place */
    char no_rename[NOTE_MAX];            /* why in place; "" while renaming */
    char no_bak[NOTE_MAX];               /* why no backup was kept; "" if none failed */
};

static void say(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append to out (which holds a C string), truncating at cap. */
static void say(char *out, size_t cap, const char *fmt, ...)
{
    size_t used = strnlen(out, cap);
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + used, cap - used, fmt, ap);
    va_end(ap);
}

static int pwrite_all(int fd, const void *data, size_t len, off_t at)
{
    const char *p = data;
    while (len) {
        ssize_t w = pwrite(fd, p, len, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        at += w;
    }
    return 0;
}

static const char *old_data(const struct job *j)
{
    return j->old.data ? buf_head(&j->old) : "";
}

/* The old file's contents into j->old (once): for the backup and for
 * writing them back after a failed in-place rewrite. */
static int read_old(struct job *j, int fd, char *err, size_t cap)
{
    if (j->have_old)
        return 0;
    for (;;) {
        if (buf_reserve(&j->old, READ_CHUNK) < 0) {
            say(err, cap, "cannot read %s: out of memory", j->real);
            return -1;
        }
        ssize_t n = pread(fd, buf_tail(&j->old), READ_CHUNK, (off_t)buf_len(&j->old));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            say(err, cap, "cannot read %s: %s", j->real, strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        buf_commit(&j->old, (size_t)n);
        if (buf_len(&j->old) > ATOMIC_FILE_OLD_MAX) {
            say(err, cap, "cannot keep the old contents of %s: larger than %u bytes", j->real,
                (unsigned)ATOMIC_FILE_OLD_MAX);
            return -1;
        }
    }
    j->have_old = true;
    return 0;
}

/* fsync the directory holding file, so a rename in it is durable.  Best
 * effort: the rename is done and cannot be undone, and some filesystems
 * do not sync directories. */
static void sync_dir(const char *file)
{
    char dir[ATOMIC_FILE_PATH_MAX];
    const char *slash = strrchr(file, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == file ? 1 : (int)(slash - file), file);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Follow j->path through symlinks to the file that is really written. */
static int resolve(struct job *j, char *err, size_t cap)
{
    char link[ATOMIC_FILE_PATH_MAX];
    if (snprintf(j->real, sizeof j->real, "%s", j->path) >= (int)sizeof j->real) {
        say(err, cap, "cannot write %s: %s", j->path, strerror(ENAMETOOLONG));
        return -1;
    }
    for (int hops = 0;; hops++) {
        if (lstat(j->real, &j->st) < 0) {
            if (errno == ENOENT)
                return 0;   /* a new file, or the missing target of a link */
            say(err, cap, "cannot write %s: %s", j->real, strerror(errno));
            return -1;
        }
        if (!S_ISLNK(j->st.st_mode))
            break;
        if (hops == ATOMIC_FILE_MAX_LINKS) {
            say(err, cap, "cannot follow the link %s: %s", j->real, strerror(ELOOP));
            return -1;
        }
        ssize_t n = readlink(j->real, link, sizeof link);
        if (n < 0 || n >= (ssize_t)sizeof link) {
            say(err, cap, "cannot follow the link %s: %s", j->real, strerror(n < 0 ? errno : ENAMETOOLONG));
            return -1;
        }
        link[n] = '\0';
        /* A relative target is relative to the directory of the link. */
        const char *slash = strrchr(j->real, '/');
        size_t keep = link[0] != '/' && slash ? (size_t)(slash - j->real) + 1 : 0;
        if (keep + (size_t)n >= sizeof j->real) {
            say(err, cap, "cannot follow the link %s: %s", j->real, strerror(ENAMETOOLONG));
            return -1;
        }
        memcpy(j->real + keep, link, (size_t)n + 1);
    }
    if (!S_ISREG(j->st.st_mode)) {
        say(err, cap, "cannot write %s: not a regular file", j->real);
        return -1;
    }
    j->exists = true;
    return 0;
}

static int prepare(struct job *j, char *err, size_t cap)
{
    if (!j->path[0]) {
        say(err, cap, "cannot write a file with an empty name");
        return -1;
    }
    if (resolve(j, err, cap) < 0)
        return -1;
    /* A mode or a mount that says read-only is the owner's decision: a
     * rename would get round it, so ask first. */
    if (j->exists && faccessat(AT_FDCWD, j->real, W_OK, AT_EACCESS) < 0) {
        say(err, cap, "cannot write %s: the file is read-only (%s)", j->real, strerror(errno));
        return -1;
    }
    if (snprintf(j->bak, sizeof j->bak, "%s.bak", j->path) >= (int)sizeof j->bak) {
        say(err, cap, "cannot write %s.bak: %s", j->path, strerror(ENAMETOOLONG));
        return -1;
    }
    return 0;
}

/* A new <base>.tmpXXXXXX, its name in name.  The fd, or -1 and errno. */
static int open_temp(char *name, const char *base)
{
    if (snprintf(name, ATOMIC_FILE_PATH_MAX, "%s" TMP_SUFFIX, base) >= ATOMIC_FILE_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(name);
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

/* Errors of creating a file that mean "this directory is not ours to
 * write", as opposed to a full disk or a broken one. */
static bool dir_refuses(int e)
{
    return e == EACCES || e == EPERM || e == EROFS;
}

/* Give a temp file the owner of the old file (like; NULL for a new one).
 * false when it cannot be given (we are not root, the owner is another). */
static bool keep_owner(int fd, const struct stat *like)
{
    struct stat now;
    if (!like || fstat(fd, &now) < 0 || (now.st_uid == like->st_uid && now.st_gid == like->st_gid))
        return true;
    return fchown(fd, like->st_uid, like->st_gid) == 0;
}

/* Write data into the temp file fd (called name), fsync and close it.
 * 0, or -1 with the file unlinked and name emptied. */
static int fill_temp(int fd, char *name, mode_t mode, const void *data, size_t len, char *err, size_t cap)
{
    /* fchmod after fchown, which may clear set-id bits. */
    int rc = fchmod(fd, mode) == 0 && pwrite_all(fd, data, len, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
    int e = errno;
    if (close(fd) < 0 && rc == 0) {   /* some filesystems report a full disk only here */
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        unlink(name);
        say(err, cap, "cannot write %s: %s", name, strerror(e));
        name[0] = '\0';
    }
    return rc;
}

/* Step 2.  0 with the temp made, or with j->no_rename saying why the file
 * must be rewritten in place instead; -1 on failure. */
static int data_temp(struct job *j, const void *data, size_t len, mode_t new_mode, char *err, size_t cap)
{
    int fd = open_temp(j->tmp, j->real);
    if (fd < 0) {
        int e = errno;
        if (!j->exists || !dir_refuses(e)) {
            say(err, cap, "cannot create %s: %s", j->tmp, strerror(e));
            j->tmp[0] = '\0';
            return -1;
        }
        say(j->no_rename, sizeof j->no_rename, "the directory is not writable: cannot create %s: %s", j->tmp,
            strerror(e));
        j->tmp[0] = '\0';
        return 0;
    }
    if (!keep_owner(fd, j->exists ? &j->st : NULL)) {
        /* Renaming would hand the file to us; in place, it stays its owner's. */
        say(j->no_rename, sizeof j->no_rename, "a new file cannot be given the owner (uid %u, gid %u) of %s: %s",
            (unsigned)j->st.st_uid, (unsigned)j->st.st_gid, j->real, strerror(errno));
        close(fd);
        unlink(j->tmp);
        j->tmp[0] = '\0';
        return 0;
    }
    mode_t mode = j->exists ? j->st.st_mode & 07777 : new_mode & 07777;
    return fill_temp(fd, j->tmp, mode, data, len, err, cap);
}

/* Step 3.  0 with the backup temp made, or with j->no_bak saying why no
 * backup can be kept; -1 on failure. */
static int backup_temp(struct job *j, char *err, size_t cap)
{
    int fd = open(j->real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        say(err, cap, "cannot read %s: %s", j->real, strerror(errno));
        return -1;
    }
    int rc = read_old(j, fd, err, cap);
    close(fd);
    if (rc < 0)
        return -1;
    fd = open_temp(j->bak_tmp, j->bak);
    if (fd < 0) {
        int e = errno;
        if (dir_refuses(e))
            say(j->no_bak, sizeof j->no_bak, "the directory is not writable: cannot create %s: %s", j->bak_tmp,
                strerror(e));
        else
            say(err, cap, "cannot create %s: %s", j->bak_tmp, strerror(e));
        j->bak_tmp[0] = '\0';
        return dir_refuses(e) ? 0 : -1;
    }
    mode_t mode = j->st.st_mode & 07777;
    if (!keep_owner(fd, &j->st))
        mode &= 0700;   /* the old contents, readable by no one new */
    return fill_temp(fd, j->bak_tmp, mode, old_data(j), buf_len(&j->old), err, cap);
}

/* Step 4, the usual way.  0 done; 1 the file cannot be renamed over (in
 * place, j->no_rename says why); -1 failed. */
static int rename_over(struct job *j, char *err, size_t cap)
{
    if (rename(j->tmp, j->real) == 0) {
        j->tmp[0] = '\0';
        sync_dir(j->real);
        return 0;
    }
    int e = errno;
    /* EBUSY/EXDEV: a mount point (a file bind-mounted on its own); EPERM:
     * a sticky directory and a file that is not ours. */
    bool fallback = e == EBUSY || e == EXDEV || e == EPERM;
    if (fallback)
        say(j->no_rename, sizeof j->no_rename, "cannot rename %s over %s: %s", j->tmp, j->real, strerror(e));
    else
        say(err, cap, "cannot rename %s over %s: %s", j->tmp, j->real, strerror(e));
    unlink(j->tmp);
    j->tmp[0] = '\0';
    return fallback ? 1 : -1;
}

/* Write data over fd from offset 0 and cut it to len, durably. */
static int rewrite(int fd, const void *data, size_t len)
{
    if (pwrite_all(fd, data, len, 0) < 0 || ftruncate(fd, (off_t)len) < 0 || fsync(fd) < 0)
        return -1;
    return 0;
}

/* Step 4 when the file cannot be renamed over. */
static int in_place(struct job *j, const void *data, size_t len, char *err, size_t cap)
{
    j->in_place = true;
    int fd = open(j->real, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        say(err, cap, "cannot write %s: %s", j->real, strerror(errno));
        return -1;
    }
    if (read_old(j, fd, err, cap) < 0) {
        close(fd);
        return -1;
    }
    off_t old_len = (off_t)buf_len(&j->old);
    /* Reserve the new size before a byte changes, so a full disk or a
     * file size limit fails here.  A filesystem that cannot reserve
     * (EOPNOTSUPP, EINVAL) is written anyway: a failure part-way is then
     * undone below. */
    int e = len ? posix_fallocate(fd, 0, (off_t)len) : 0;
    if (e && e != EOPNOTSUPP && e != EINVAL) {
        /* posix_fallocate may have grown the file: cut it back. */
        if (ftruncate(fd, old_len) < 0)
            say(err, cap, "cannot restore the length of %s: %s; ", j->real, strerror(errno));
        close(fd);
        say(err, cap, "cannot reserve %zu bytes for %s: %s", len, j->real, strerror(e));
        return -1;
    }
    if (rewrite(fd, data, len) == 0) {
        close(fd);   /* after a successful fsync, close has nothing left to report */
        return 0;
    }
    e = errno;
    bool undone = rewrite(fd, old_data(j), buf_len(&j->old)) == 0;
    close(fd);
    say(err, cap, "cannot write %s: %s (%s)", j->real, strerror(e),
        undone ? "the old contents were written back" : "the old contents could not be written back");
    return -1;
}

/* Step 5: the backup temp over <path>.bak.  rename replaces a symlink
 * there rather than following it.  On failure the temp stays: it is
 * then the only copy of the old contents. */
static void commit_backup(struct job *j)
{
    if (!j->bak_tmp[0])
        return;
    if (rename(j->bak_tmp, j->bak) == 0) {
        j->bak_tmp[0] = '\0';
        sync_dir(j->bak);
        return;
    }
    say(j->no_bak, sizeof j->no_bak, "cannot rename %s to %s: %s; the old contents are in %s", j->bak_tmp, j->bak,
        strerror(errno), j->bak_tmp);
}

/* The note of a success, or the background of a failure. */
static void report(const struct job *j, int rc, char *err, size_t cap)
{
    if (rc < 0) {
        if (j->in_place)
            say(err, cap, "; in place because %s", j->no_rename);
        if (j->no_bak[0])
            say(err, cap, "; no backup could be made either: %s", j->no_bak);
        return;
    }
    if (j->no_rename[0])
        say(err, cap, "rewritten in place: %s", j->no_rename);
    if (j->no_bak[0])
        say(err, cap, "%sno backup kept: %s", err[0] ? "; " : "", j->no_bak);
}

int atomic_file_replace(const char *path, const void *data, size_t len, mode_t new_mode, unsigned flags, char *err,
                        size_t cap)
{
    struct job j;   /* ~40 KiB of paths on the stack: fine for a rare call on the main thread */
    char scratch[1];
    if (!err || !cap) {   /* no room for a message: still do the work */
        err = scratch;
        cap = sizeof scratch;
    }
    err[0] = '\0';
    memset(&j, 0, sizeof j);
    j.path = path ? path : "";
    int rc = prepare(&j, err, cap);
    if (rc == 0)
        rc = data_temp(&j, data, len, new_mode, err, cap);
    if (rc == 0 && (flags & ATOMIC_FILE_BACKUP) && j.exists)
        rc = backup_temp(&j, err, cap);
    if (rc == 0)
        rc = j.tmp[0] ? rename_over(&j, err, cap) : 1;
    if (rc == 1)
        rc = in_place(&j, data, len, err, cap);
    if (rc == 0) {
        commit_backup(&j);
    } else {
        if (j.tmp[0])
            unlink(j.tmp);
        if (j.bak_tmp[0])
            unlink(j.bak_tmp);
    }
    report(&j, rc, err, cap);
    buf_free(&j.old);
    return rc;
}
