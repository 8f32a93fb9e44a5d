/* Unit tests of atomic_file.c: a plain replace (contents, mode, owner's
 * file mode kept, no temp file left), the .bak (written, rotated, never
 * followed when it is a symlink), symlinked targets (written through, the
 * links kept), and failures: a file size limit (RLIMIT_FSIZE, EFBIG) and a
 * really full filesystem (a small tmpfs, ENOSPC) leave the file and the
 * .bak byte-identical and no temp file behind.
 *
 * The in-place cases need a file that cannot be renamed over or a
 * directory we cannot write.  chmod does not stop root, so those tests
 * use mounts in a private mount namespace (as root: unshare(CLONE_NEWNS);
 * otherwise inside a new user namespace, where that is allowed): a file
 * bind-mounted on its own (rename gives EBUSY, as in a container) and a
 * directory remounted read-only.  When neither namespace can be had they
 * are skipped, saying why; the chmod tests are skipped as root. */
#define _GNU_SOURCE   /* unshare, CLONE_NEWNS, nftw */

#include "atomic_file.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERR_CAP 1024
#define LIMIT 4096          /* RLIMIT_FSIZE of the "full disk" tests */
#define BIG (2 * LIMIT)     /* a write that crosses it */
#define TMPFS_BYTES 65536   /* size of the really full filesystem */

static char root[256];      /* the test's own directory */
static struct rlimit saved_fsize;

static const char *P(const char *name)
{
    static char ring[8][512];
    static unsigned i;
    char *p = ring[i++ % 8];
    snprintf(p, sizeof ring[0], "%s/%s", root, name);
    return p;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* The contents of path ("<missing>" when it cannot be opened). */
static const char *slurp(const char *path)
{
    static char ring[4][BIG + 64];
    static unsigned i;
    char *b = ring[i++ % 4];
    size_t len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return "<missing>";
    for (ssize_t n; len < sizeof ring[0] - 1 && (n = read(fd, b + len, sizeof ring[0] - 1 - len)) > 0;)
        len += (size_t)n;
    close(fd);
    b[len] = '\0';
    return b;
}

static char *filled(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Entries of dir whose name holds ".tmp": temp files left behind. */
static int temps_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static ino_t inode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0;
}

static bool is_link(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

static void limit_fsize(rlim_t bytes)
{
    struct rlimit r = saved_fsize;
    r.rlim_cur = bytes;
    if (setrlimit(RLIMIT_FSIZE, &r) < 0) {
        printf("Bail out! setrlimit: %s\n", strerror(errno));
        exit(1);
    }
}

static void unlimit_fsize(void)
{
    setrlimit(RLIMIT_FSIZE, &saved_fsize);
}

static int replace(const char *path, const char *text, mode_t mode, unsigned flags, char *err)
{
    return atomic_file_replace(path, text, strlen(text), mode, flags, err, ERR_CAP);
}

static void mkdir_or_bail(const char *path)
{
    if (mkdir(path, 0755) < 0) {
        printf("Bail out! mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---------------- the usual way ---------------- */

static void test_plain(void)
{
    char err[ERR_CAP];
    is_int(replace(P("new.txt"), "hello\n", 0644, 0, err), 0, "a new file is created");
    is_str(err, "", "... with no note");
    is_str(slurp(P("new.txt")), "hello\n", "... holding the data");
    is_int(mode_of(P("new.txt")), 0644, "... mode 0644 as asked");
    is_int(replace(P("private.txt"), "secret\n", 0600, 0, err), 0, "a new private file");
    is_int(mode_of(P("private.txt")), 0600, "... mode 0600 as asked");

    put(P("f.txt"), "old contents\n");
    chmod(P("f.txt"), 0640);
    ino_t before = inode(P("f.txt"));
    is_int(replace(P("f.txt"), "new contents, longer than before\n", 0644, 0, err), 0, "an existing file is replaced");
    is_str(err, "", "... with no note");
    is_str(slurp(P("f.txt")), "new contents, longer than before\n", "... holding the new data");
    is_int(mode_of(P("f.txt")), 0640, "... keeping its mode 0640, not new_mode");
    ok(inode(P("f.txt")) != before, "... by a rename (a new inode)");
    ok(access(P("f.txt.bak"), F_OK) != 0, "... no .bak unless asked for");
    is_int(atomic_file_replace(P("f.txt"), NULL, 0, 0644, 0, err, sizeof err), 0, "empty contents (data NULL)");
    is_str(slurp(P("f.txt")), "", "... leave an empty file");
    is_int(temps_in(root), 0, "no temp file is left behind");

    is_int(replace(P("nodir/x.txt"), "x", 0644, 0, err), -1, "a missing directory: -1");
    ok(strstr(err, "cannot create ") && strstr(err, "/nodir/x.txt.tmp") && strstr(err, strerror(ENOENT)),
       "... naming the temp file and the error (%s)", err);
    mkdir_or_bail(P("adir"));
    is_int(replace(P("adir"), "x", 0644, 0, err), -1, "a directory is not replaced");
    ok(strstr(err, "not a regular file") != NULL, "... saying it is not a regular file (%s)", err);
}

static void test_backup(void)
{
    char err[ERR_CAP];
    put(P("b.txt"), "v1\n");
    chmod(P("b.txt"), 0640);
    put(P("b.txt.bak"), "v0\n");
    is_int(replace(P("b.txt"), "v2\n", 0644, ATOMIC_FILE_BACKUP, err), 0, "replace keeping a backup");
    is_str(err, "", "... with no note");
    is_str(slurp(P("b.txt")), "v2\n", "... the file holds the new data");
    is_str(slurp(P("b.txt.bak")), "v1\n", "... the .bak holds the old contents");
    is_int(mode_of(P("b.txt.bak")), 0640, "... with the old file's mode");
    is_int(replace(P("b.txt"), "v3\n", 0644, ATOMIC_FILE_BACKUP, err), 0, "a second replace");
    is_str(slurp(P("b.txt.bak")), "v2\n", "... moves the .bak on");
    is_int(temps_in(root), 0, "no temp file is left behind");
    is_int(replace(P("fresh.txt"), "first\n", 0644, ATOMIC_FILE_BACKUP, err), 0, "a new file with a backup asked");
    ok(access(P("fresh.txt.bak"), F_OK) != 0, "... has nothing to back up: no .bak");
}

/* The .bak is a symlink to a file of value: it is replaced, not followed. */
static void test_bak_symlink(void)
{
    char err[ERR_CAP];
    put(P("precious.txt"), "do not touch\n");
    put(P("s.txt"), "old\n");
    symlink("precious.txt", P("s.txt.bak"));
    is_int(replace(P("s.txt"), "new\n", 0644, ATOMIC_FILE_BACKUP, err), 0, ".bak is a symlink: replace works");
    is_str(slurp(P("precious.txt")), "do not touch\n", "... the link's target is untouched");
    ok(!is_link(P("s.txt.bak")), "... the .bak is now a plain file, not the link");
    is_str(slurp(P("s.txt.bak")), "old\n", "... holding the old contents");
    put(P("d.txt"), "old\n");
    symlink("nowhere.txt", P("d.txt.bak"));
    is_int(replace(P("d.txt"), "new\n", 0644, ATOMIC_FILE_BACKUP, err), 0, ".bak is a dangling symlink");
    ok(access(P("nowhere.txt"), F_OK) != 0, "... its target is not created");
    is_str(slurp(P("d.txt.bak")), "old\n", "... the .bak holds the old contents");
}

/* The target is a symlink (a chain of two, relative and absolute): the
 * real file is written, the links stay links. */
static void test_symlink_target(void)
{
    char err[ERR_CAP], got[512];
    mkdir_or_bail(P("real"));
    put(P("real/cfg.yaml"), "old\n");
    chmod(P("real/cfg.yaml"), 0600);
    symlink("real/cfg.yaml", P("link1.yaml"));
    symlink(P("link1.yaml"), P("link2.yaml"));
    is_int(replace(P("link2.yaml"), "new\n", 0644, ATOMIC_FILE_BACKUP, err), 0, "replace through two symlinks");
    is_str(err, "", "... with no note");
    is_str(slurp(P("real/cfg.yaml")), "new\n", "... the real file holds the data");
    is_int(mode_of(P("real/cfg.yaml")), 0600, "... and keeps its mode");
    ok(is_link(P("link1.yaml")) && is_link(P("link2.yaml")), "... both links are still links");
    ssize_t n = readlink(P("link1.yaml"), got, sizeof got - 1);
    got[n < 0 ? 0 : n] = '\0';
    is_str(got, "real/cfg.yaml", "... pointing where they did");
    ok(!is_link(P("link2.yaml.bak")), "... the .bak is beside the name given, a plain file");
    is_str(slurp(P("link2.yaml.bak")), "old\n", "... holding the old contents");
    is_int(temps_in(root) + temps_in(P("real")), 0, "... no temp file left in either directory");

    symlink("real/made.yaml", P("dangling.yaml"));
    is_int(replace(P("dangling.yaml"), "made\n", 0644, 0, err), 0, "a dangling symlink");
    is_str(slurp(P("real/made.yaml")), "made\n", "... creates its target");
    ok(is_link(P("dangling.yaml")), "... and stays a link");

    symlink("loop2.yaml", P("loop1.yaml"));
    symlink("loop1.yaml", P("loop2.yaml"));
    is_int(replace(P("loop1.yaml"), "x", 0644, 0, err), -1, "a symlink loop: -1");
    ok(strstr(err, strerror(ELOOP)) != NULL, "... naming the error (%s)", err);
}

/* ---------------- failures ---------------- */

/* A file size limit hit while writing the new data, then while copying the
 * old contents into the backup: nothing changes. */
static void test_size_limit(void)
{
    char err[ERR_CAP], want[128];
    char *big = filled('n', BIG), *old_big = filled('o', BIG);
    put(P("full.txt"), "old contents\n");
    put(P("full.txt.bak"), "older contents\n");
    ino_t before = inode(P("full.txt"));
    limit_fsize(LIMIT);
    int rc = replace(P("full.txt"), big, 0644, ATOMIC_FILE_BACKUP, err);
    unlimit_fsize();
    is_int(rc, -1, "the new data crosses the file size limit: -1");
    snprintf(want, sizeof want, "/full.txt.tmp");
    ok(strncmp(err, "cannot write ", 13) == 0 && strstr(err, want) && strstr(err, strerror(EFBIG)),
       "... the error names the temp file and the error (%s)", err);
    is_str(slurp(P("full.txt")), "old contents\n", "... the file is byte-identical");
    ok(inode(P("full.txt")) == before, "... the very same file");
    is_str(slurp(P("full.txt.bak")), "older contents\n", "... the .bak is byte-identical");
    is_int(temps_in(root), 0, "... no temp file is left behind");

    put(P("full2.txt"), old_big);
    put(P("full2.txt.bak"), "older contents\n");
    limit_fsize(LIMIT);
    rc = replace(P("full2.txt"), "small new contents\n", 0644, ATOMIC_FILE_BACKUP, err);
    unlimit_fsize();
    is_int(rc, -1, "the old contents cross the limit while being backed up: -1");
    ok(strstr(err, "/full2.txt.bak.tmp") && strstr(err, strerror(EFBIG)), "... the error names the backup temp (%s)",
       err);
    is_str(slurp(P("full2.txt")), old_big, "... the file is byte-identical");
    is_str(slurp(P("full2.txt.bak")), "older contents\n", "... the .bak is byte-identical");
    is_int(temps_in(root), 0, "... no temp file is left behind (the data temp is gone too)");
    free(big);
    free(old_big);
}

/* Another user's file that we may write: a rename would hand it to us,
 * so as root the owner is carried over, and as anyone else it is
 * rewritten in place (a child drops to nobody to show it). */
static void test_owner(void)
{
    char err[ERR_CAP];
    struct stat st;
    if (geteuid() != 0) {
        ok(1, "# SKIP not root: cannot make a file of another owner");
        return;
    }
    put(P("theirs.txt"), "old\n");
    chown(P("theirs.txt"), 65534, 65534);
    is_int(replace(P("theirs.txt"), "new\n", 0644, 0, err), 0, "root replaces another user's file");
    ok(stat(P("theirs.txt"), &st) == 0 && st.st_uid == 65534 && st.st_gid == 65534, "... which keeps its owner");

    chmod(root, 0755);   /* mkdtemp made it 0700: let nobody in */
    mkdir_or_bail(P("shared"));
    chmod(P("shared"), 0777);
    put(P("shared/root.txt"), "old\n");
    chmod(P("shared/root.txt"), 0666);
    ino_t before = inode(P("shared/root.txt"));
    pid_t pid = fork();
    if (pid == 0) {
        int rc = setgid(65534) == 0 && setuid(65534) == 0 ? replace(P("shared/root.txt"), "new\n", 0644, 0, err) : -1;
        _exit(rc == 0 && strstr(err, "rewritten in place") && strstr(err, "owner") ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nobody saving root's writable file: in place, saying why");
    ok(stat(P("shared/root.txt"), &st) == 0 && st.st_uid == 0 && st.st_ino == before, "... it stays root's file");
    is_str(slurp(P("shared/root.txt")), "new\n", "... holding the new data");
}

/* chmod-made failures: only meaningful when file modes bind us. */
static void test_modes(void)
{
    char err[ERR_CAP];
    if (geteuid() == 0) {
        ok(1, "# SKIP running as root: file and directory modes do not stop root (see the namespace tests)");
        return;
    }
    put(P("ro.txt"), "old\n");
    chmod(P("ro.txt"), 0444);
    is_int(replace(P("ro.txt"), "new\n", 0644, 0, err), -1, "a read-only file (0444) is refused");
    ok(strstr(err, "read-only") != NULL, "... saying it is read-only (%s)", err);
    is_str(slurp(P("ro.txt")), "old\n", "... and left as it was");

    mkdir_or_bail(P("rodir"));
    put(P("rodir/c.txt"), "old contents\n");
    put(P("rodir/c.txt.bak"), "older\n");
    ino_t before = inode(P("rodir/c.txt"));
    chmod(P("rodir"), 0555);
    is_int(replace(P("rodir/c.txt"), "new\n", 0644, ATOMIC_FILE_BACKUP, err), 0,
           "a directory we cannot write (0555): rewritten in place");
    ok(strstr(err, "rewritten in place") && strstr(err, "not writable") && strstr(err, "no backup kept"),
       "... the note says so, and that no backup was kept (%s)", err);
    is_str(slurp(P("rodir/c.txt")), "new\n", "... the file holds the new data");
    ok(inode(P("rodir/c.txt")) == before, "... in the same inode");
    is_str(slurp(P("rodir/c.txt.bak")), "older\n", "... the old .bak is untouched");
    is_int(replace(P("rodir/n.txt"), "new\n", 0644, 0, err), -1, "a new file there cannot be made: -1");
    ok(strstr(err, "/rodir/n.txt.tmp") && strstr(err, strerror(EACCES)), "... saying why (%s)", err);
    chmod(P("rodir"), 0755);
}

/* ---------------- in place, in a private mount namespace ---------------- */

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    int rc = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Enter a mount namespace of our own, so the mounts below are seen by
 * this process only and vanish with it.  NULL, or why it cannot be done. */
static const char *enter_mount_ns(void)
{
    static char why[256];
    unsigned uid = (unsigned)geteuid(), gid = (unsigned)getegid();
    char map[64];
    if (uid == 0 && unshare(CLONE_NEWNS) < 0) {
        snprintf(why, sizeof why, "unshare(CLONE_NEWNS): %s", strerror(errno));
        return why;
    }
    if (uid != 0) {
        /* Root of a new user namespace may mount; map us to it. */
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
            snprintf(why, sizeof why, "not root, and unshare(CLONE_NEWUSER): %s", strerror(errno));
            return why;
        }
        snprintf(map, sizeof map, "0 %u 1", uid);
        int rc = write_text("/proc/self/setgroups", "deny") | write_text("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "0 %u 1", gid);
        if ((rc | write_text("/proc/self/gid_map", map)) < 0) {
            snprintf(why, sizeof why, "cannot map our ids in a user namespace: %s", strerror(errno));
            return why;
        }
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        snprintf(why, sizeof why, "cannot make our mounts private: %s", strerror(errno));
        return why;
    }
    return NULL;
}

/* Bind-mount dir on itself, read-only (keeping the flags a user
 * namespace may not drop). */
static int bind_ro(const char *dir)
{
    struct statvfs sv;
    if (mount(dir, dir, NULL, MS_BIND, NULL) < 0 || statvfs(dir, &sv) < 0)
        return -1;
    unsigned long keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
                         (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
    return mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL);
}

static void bind_or_bail(const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
        printf("Bail out! bind mount %s on %s: %s\n", src, dst, strerror(errno));
        exit(1);
    }
}

/* A config bind-mounted on its own into a writable directory, as Docker
 * does with a single file: rename gives EBUSY, so it is rewritten in
 * place; the .bak is still made beside it. */
static void test_bind_mounted(void)
{
    char err[ERR_CAP];
    char *grown = filled('g', 3000), *big = filled('n', BIG);
    mkdir_or_bail(P("host"));
    mkdir_or_bail(P("ctr"));
    put(P("host/cfg.yaml"), "old contents\n");
    chmod(P("host/cfg.yaml"), 0640);
    put(P("ctr/cfg.yaml"), "hidden by the mount\n");
    put(P("ctr/cfg.yaml.bak"), "older\n");
    bind_or_bail(P("host/cfg.yaml"), P("ctr/cfg.yaml"));
    ino_t before = inode(P("ctr/cfg.yaml"));
    is_int(replace(P("ctr/cfg.yaml"), "new contents\n", 0644, ATOMIC_FILE_BACKUP, err), 0,
           "a file bind-mounted on its own is saved");
    ok(strstr(err, "rewritten in place") && strstr(err, strerror(EBUSY)), "... in place, the note says why (%s)", err);
    is_str(slurp(P("host/cfg.yaml")), "new contents\n", "... the mounted file holds the new data");
    ok(inode(P("ctr/cfg.yaml")) == before, "... the same inode");
    is_int(mode_of(P("host/cfg.yaml")), 0640, "... its mode unchanged");
    is_str(slurp(P("ctr/cfg.yaml.bak")), "old contents\n", "... the .bak beside it holds the old contents");
    is_int(temps_in(P("ctr")) + temps_in(P("host")), 0, "... no temp file left");
    replace(P("ctr/cfg.yaml"), grown, 0644, 0, err);
    is_str(slurp(P("host/cfg.yaml")), grown, "in place, growing: exactly the new data");
    replace(P("ctr/cfg.yaml"), "s\n", 0644, 0, err);
    is_str(slurp(P("host/cfg.yaml")), "s\n", "in place, shrinking: cut to the new length");

    replace(P("ctr/cfg.yaml"), "kept\n", 0644, ATOMIC_FILE_BACKUP, err);
    limit_fsize(LIMIT);
    int rc = replace(P("ctr/cfg.yaml"), big, 0644, ATOMIC_FILE_BACKUP, err);
    unlimit_fsize();
    is_int(rc, -1, "over the file size limit: -1");
    ok(strstr(err, "/ctr/cfg.yaml.tmp") && strstr(err, strerror(EFBIG)), "... at the temp file, before a rename (%s)",
       err);
    is_str(slurp(P("host/cfg.yaml")), "kept\n", "... the file is byte-identical");
    is_str(slurp(P("ctr/cfg.yaml.bak")), "s\n", "... the .bak is byte-identical");
    is_int(temps_in(P("ctr")) + temps_in(P("host")), 0, "... no temp file left");
    umount2(P("ctr/cfg.yaml"), MNT_DETACH);
    free(grown);
    free(big);
}

/* A read-only directory (root is not stopped by modes, a read-only mount
 * stops everyone) with the config bind-mounted writable into it. */
static void test_ro_dir(void)
{
    char err[ERR_CAP];
    char *big = filled('n', BIG);
    mkdir_or_bail(P("rom"));
    put(P("rom/cfg.yaml"), "hidden by the mount\n");
    put(P("rom/cfg.yaml.bak"), "older\n");
    put(P("rom/other.yaml"), "other\n");
    put(P("host/rw.yaml"), "old contents\n");
    if (bind_ro(P("rom")) < 0) {
        ok(1, "# SKIP cannot remount a directory read-only: %s", strerror(errno));
        free(big);
        return;
    }
    bind_or_bail(P("host/rw.yaml"), P("rom/cfg.yaml"));
    is_int(replace(P("rom/cfg.yaml"), "new\n", 0644, ATOMIC_FILE_BACKUP, err), 0,
           "a writable file in a read-only directory is saved");
    ok(strstr(err, "rewritten in place") && strstr(err, "not writable") && strstr(err, strerror(EROFS)),
       "... in place, the note says the directory is not writable (%s)", err);
    ok(strstr(err, "no backup kept") && strstr(err, "/rom/cfg.yaml.bak.tmp"), "... and that no backup was kept");
    is_str(slurp(P("host/rw.yaml")), "new\n", "... the file holds the new data");
    is_str(slurp(P("rom/cfg.yaml.bak")), "older\n", "... the old .bak is untouched");
    limit_fsize(LIMIT);
    int rc = replace(P("rom/cfg.yaml"), big, 0644, ATOMIC_FILE_BACKUP, err);
    unlimit_fsize();
    is_int(rc, -1, "in place over the file size limit: -1");
    ok(strstr(err, "cannot reserve") && strstr(err, strerror(EFBIG)) && strstr(err, "in place because the directory"),
       "... the reservation fails; the error says so and why in place (%s)", err);
    ok(strstr(err, "no backup could be made either") != NULL, "... and why there is no backup");
    is_str(slurp(P("host/rw.yaml")), "new\n", "... the file is byte-identical (not grown)");
    is_str(slurp(P("rom/cfg.yaml.bak")), "older\n", "... the .bak is byte-identical");
    is_int(replace(P("rom/other.yaml"), "new\n", 0644, 0, err), -1, "a file on the read-only mount: -1");
    ok(strstr(err, "read-only") && strstr(err, strerror(EROFS)), "... saying why (%s)", err);
    is_str(slurp(P("rom/other.yaml")), "other\n", "... and left as it was");
    is_int(replace(P("rom/new.yaml"), "new\n", 0644, 0, err), -1, "a new file there: -1");
    ok(strstr(err, "cannot create") && strstr(err, strerror(EROFS)), "... saying why (%s)", err);
    umount2(P("rom/cfg.yaml"), MNT_DETACH);
    umount2(P("rom"), MNT_DETACH);
    free(big);
}

/* A really full filesystem: a small tmpfs filled up.  Both ways fail
 * with ENOSPC before anything changes. */
static void test_enospc(void)
{
    char err[ERR_CAP], chunk[1024];
    char *big = filled('n', BIG);
    char opts[32];
    mkdir_or_bail(P("tfs"));
    snprintf(opts, sizeof opts, "size=%d", TMPFS_BYTES);
    if (mount("tmpfs", P("tfs"), "tmpfs", 0, opts) < 0) {
        ok(1, "# SKIP cannot mount a tmpfs: %s", strerror(errno));
        free(big);
        return;
    }
    put(P("tfs/t.yaml"), "old contents\n");
    put(P("tfs/t.yaml.bak"), "older\n");
    put(P("ctr/t.yaml"), "hidden by the mount\n");
    put(P("ctr/t.yaml.bak"), "older too\n");
    memset(chunk, 'f', sizeof chunk);
    int fd = open(P("tfs/filler"), O_WRONLY | O_CREAT, 0644);
    while (fd >= 0 && write(fd, chunk, sizeof chunk) == (ssize_t)sizeof chunk)
        ;
    close(fd);
    is_int(replace(P("tfs/t.yaml"), big, 0644, ATOMIC_FILE_BACKUP, err), -1, "a full filesystem: -1");
    ok(strstr(err, "/tfs/t.yaml.tmp") && strstr(err, strerror(ENOSPC)), "... naming the temp file and ENOSPC (%s)",
       err);
    is_str(slurp(P("tfs/t.yaml")), "old contents\n", "... the file is byte-identical");
    is_str(slurp(P("tfs/t.yaml.bak")), "older\n", "... the .bak is byte-identical");
    is_int(temps_in(P("tfs")), 0, "... no temp file left");

    bind_or_bail(P("tfs/t.yaml"), P("ctr/t.yaml"));
    is_int(replace(P("ctr/t.yaml"), big, 0644, ATOMIC_FILE_BACKUP, err), -1, "in place on a full filesystem: -1");
    ok(strstr(err, "cannot reserve") && strstr(err, strerror(ENOSPC)), "... the reservation fails (%s)", err);
    is_str(slurp(P("tfs/t.yaml")), "old contents\n", "... the file is byte-identical");
    is_str(slurp(P("ctr/t.yaml.bak")), "older too\n", "... the .bak is byte-identical");
    is_int(temps_in(P("tfs")) + temps_in(P("ctr")), 0, "... no temp file left");
    umount2(P("ctr/t.yaml"), MNT_DETACH);
    umount2(P("tfs"), MNT_DETACH);
    free(big);
}

static void test_namespaced(void)
{
    const char *why = enter_mount_ns();
    if (why) {
        ok(1, "# SKIP in-place tests need a private mount namespace: %s", why);
        return;
    }
    test_bind_mounted();
    test_ro_dir();
    test_enospc();
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void cleanup(void)
{
    if (nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
        printf("# could not remove all of %s\n", root);
}

int main(void)
{
    signal(SIGXFSZ, SIG_IGN);   /* the size limit must give EFBIG, not kill us */
    getrlimit(RLIMIT_FSIZE, &saved_fsize);
    const char *t = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/atomic_file.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(root)) {
        printf("Bail out! mkdtemp %s: %s\n", root, strerror(errno));
        return 1;
    }
    test_plain();
    test_backup();
    test_bak_symlink();
    test_symlink_target();
    test_size_limit();
    test_owner();
    test_modes();
    test_namespaced();
    cleanup();
    return tap_done();
}
