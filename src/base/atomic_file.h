/* atomic_file: replace the contents of a file so that no failure loses
 * the old contents (the config the admin API saves; the usage statistics
 * file).
 *
 * Blocking: the writes, fsyncs and renames run on the one thread and hold
 * up the poll loop for as long as the disk takes.  That is accepted
 * because the calls are rare (an admin save; the usage file at most once
 * a minute) and small; nothing on a hot path may call this.
 *
 * The process must ignore SIGXFSZ (main does): a write past RLIMIT_FSIZE
 * then fails with EFBIG, like a full disk, instead of killing us. */
#ifndef AUTOSWITCH_ATOMIC_FILE_H
#define AUTOSWITCH_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#define ATOMIC_FILE_BACKUP 0x1u            /* flag: keep the old contents as <path>.bak */
#define ATOMIC_FILE_PATH_MAX 4096          /* longest path, after following symlinks */
#define ATOMIC_FILE_MAX_LINKS 40           /* symlinks followed from path, as the kernel's limit */
#define ATOMIC_FILE_OLD_MAX (64u << 20)    /* old contents held in memory (backup, in-place undo) */

/* Make the file at `path` hold data[0, len) (data may be NULL when len
 * is 0).  Returns 0 or -1.  The caller owns every argument; nothing is
 * kept after the call.  `err` (cap bytes, always NUL-terminated when
 * cap > 0) gets, on -1, why, naming the error and the path
 * ("cannot write conf/x.yaml.tmpAB12cd: No space left on device"); on 0,
 * "" when all went the usual way, else a note for the log saying what
 * was done differently (rewritten in place, no backup kept) and why.
 *
 * path may be a symlink (or a chain of them): the file it points to is
 * written and the link stays a link.  `new_mode` (0644, or 0600 for a
 * private file) is used, exactly (no umask), only when the file does not
 * exist yet; an existing file keeps its mode and, where we may set it,
 * its owner.  An existing file we may not write (its mode, a read-only
 * mount) is refused, never replaced behind its owner's back.
 *
 * The usual way: <real>.tmpXXXXXX in the directory of the real file
 * (after symlinks) is written, fsynced and renamed over the file, and the
 * directory is fsynced (best effort: not every filesystem can).  With
 * ATOMIC_FILE_BACKUP and an existing file, its contents are first copied
 * the same way to <path>.bak.tmpXXXXXX (path as given, so the .bak sits
 * beside the name the caller knows) and renamed over <path>.bak only
 * once the file holds the new data.  The .bak is never opened for
 * writing: when it is a symlink, the rename replaces the link, not what
 * it points to.  A .bak gets the old file's mode (owner-only when the
 * owner cannot be kept).  No existing file, no backup: an old .bak stays.
 *
 * In place: when the file cannot be renamed over (a file bind-mounted on
 * its own into a container: EBUSY or EXDEV; a sticky directory: EPERM),
 * when its directory does not let us create the temp file (EACCES, EPERM,
 * EROFS), or when a new file could not be given the old one's owner, the
 * file is rewritten in place: its new size is reserved first
 * (posix_fallocate, so a full disk or a size limit fails before a byte
 * changes), then the data is written from offset 0, the file truncated
 * to len and fsynced.  Should that fail part-way (a filesystem that
 * cannot reserve space, an I/O error), the old contents are written back.
 * The .bak in place: made as above when its directory allows (the temp
 * before the rewrite, the rename after it); when not, the file is still
 * rewritten and the note says that no backup was kept and why.  When in
 * place is impossible too, -1, and err says why, and also why the temp
 * file and the .bak could not be made (e.g. "the directory is not
 * writable: cannot create conf/x.yaml.tmpAB12cd: Read-only file system").
 *
 * Guarantees on -1: the file and the .bak are byte-identical to what they
 * were and no temp file is left (one exception, which err then states:
 * an in-place rewrite that failed part-way and whose write-back of the
 * old contents failed too, e.g. a dying disk).  On 0: the file holds the data; with
 * ATOMIC_FILE_BACKUP the .bak holds the old contents unless the note says
 * otherwise (if the backup temp was written but cannot be renamed to
 * .bak, it is left under its temp name, which the note gives: it is then
 * the only copy of the old contents).  After a crash: the rename way
 * leaves the old file or the new one, never a mixture; in place, a crash
 * mid-write can leave a mixture.  Either way the old contents were
 * durable in <path>.bak.tmpXXXXXX (when a backup was asked for and could
 * be made) before the file changed, and a crash before the final rename
 * leaves them there. */
int atomic_file_replace(const char *path, const void *data, size_t len, mode_t new_mode, unsigned flags, char *err,
                        size_t cap);

#endif
