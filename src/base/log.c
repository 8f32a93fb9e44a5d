#include "log.h"

#include "buf.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct ring_line {
    uint64_t seq;
    char *text;   /* NUL-terminated, no newline */
    size_t len;
    size_t cap;   /* block size from mem_get */
};

static struct {
    struct ring_line *ring;
    size_t cap;       /* slots */
    size_t count;     /* lines held */
    size_t head;      /* slot of the oldest line */
    uint64_t seq;
    enum log_level min;
    int to_stdout;
    int fd;           /* log file, or -1 */
    char *path;
    uint64_t file_bytes;
    uint64_t file_max;
    time_t tsec;      /* second for which tstamp is valid */
    char tstamp[24];  /* "YYYY-MM-DD HH:MM:SS" */
    bool batching;    /* the loop runs: INFO and DEBUG lines wait for the end of its iteration */
    bool flush_queued;
    char pending[LOG_PENDING_MAX];
    size_t npending;
} logger = { .fd = -1, .to_stdout = 1, .min = LOG_INFO };

static const char *level_name[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void log_init(void)
{
    tzset();
}

void log_set_level(enum log_level min)
{
    logger.min = min;
}

void log_set_stdout(int on)
{
    logger.to_stdout = on;
}

static void ring_drop_oldest(void)
{
    struct ring_line *l = &logger.ring[logger.head];
    mem_put(l->text, l->cap);
    l->text = NULL;
    logger.head = (logger.head + 1) % logger.cap;
    logger.count--;
}

static int ring_resize(size_t lines)
{
    if (lines == logger.cap)
        return 0;
    struct ring_line *r = calloc(lines ? lines : 1, sizeof *r);
    if (!r)
        return -1;
    while (logger.count > lines)
        ring_drop_oldest();
    for (size_t i = 0; i < logger.count; i++)
        r[i] = logger.ring[(logger.head + i) % logger.cap];
    free(logger.ring);
    logger.ring = r;
    logger.cap = lines;
    logger.head = 0;
    return 0;
}

static void file_close(void)
{
    if (logger.fd >= 0)
        close(logger.fd);
    logger.fd = -1;
}

/* Create the missing directories of path (the reference logs to
 * runtime/logs/app.log, and a fresh volume has no logs/ in it). */
static void make_parents(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof tmp)
        return;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(tmp, 0755);
        *p = '/';
    }
}

static int file_open(void)
{
    make_parents(logger.path);
    int fd = open(logger.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    struct stat st;
    logger.file_bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    logger.fd = fd;
    return 0;
}

int log_configure(size_t ring_lines, const char *file, uint64_t max_bytes)
{
    log_flush();   /* lines so far go where they were meant to */
    if (ring_resize(ring_lines) < 0)
        return -1;
    logger.file_max = max_bytes;
    if (file && *file && logger.path && strcmp(file, logger.path) == 0 && logger.fd >= 0)
        return 0;
    file_close();
    free(logger.path);
    logger.path = NULL;
    if (!file || !*file)
        return 0;
    logger.path = strdup(file);
    if (!logger.path)
        return -1;
    return file_open();
}

void log_shutdown(void)
{
    log_set_batching(false);
    while (logger.count)
        ring_drop_oldest();
    free(logger.ring);
    logger.ring = NULL;
    logger.cap = 0;
    file_close();
    free(logger.path);
    logger.path = NULL;
}

/* Rename file -> file.1 -> ... -> file.N and start a new file. */
static void file_rotate(void)
{
    size_t n = strlen(logger.path) + 8;
    char *from = malloc(n), *to = malloc(n);
    if (from && to) {
        for (int i = LOG_FILE_KEEP - 1; i >= 1; i--) {
            snprintf(from, n, "%s.%d", logger.path, i);
            snprintf(to, n, "%s.%d", logger.path, i + 1);
            rename(from, to);
        }
        snprintf(to, n, "%s.1", logger.path);
        rename(logger.path, to);
    }
    free(from);
    free(to);
    file_close();
    file_open();
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;  /* a log sink that fails must not take the server down */
        }
        p += w;
        n -= (size_t)w;
    }
}

static size_t format_time(char *out, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != logger.tsec || !logger.tstamp[0]) {
        struct tm tm;
        time_t t = tv.tv_sec;
        localtime_r(&t, &tm);
        strftime(logger.tstamp, sizeof logger.tstamp, "%Y-%m-%d %H:%M:%S", &tm);
        logger.tsec = tv.tv_sec;
    }
    /* Once a second the date is formatted; the milliseconds by hand (no
     * printf per line: the access log is on every request's path). */
    size_t n = strlen(logger.tstamp);
    if (n + 4 > cap)
        return 0;
    memcpy(out, logger.tstamp, n);
    int ms = (int)(tv.tv_usec / 1000);
    out[n++] = '.';
    out[n++] = (char)('0' + ms / 100);
    out[n++] = (char)('0' + ms / 10 % 10);
    out[n++] = (char)('0' + ms % 10);
    return n;
}

/* Write what waits to stdout and the file (rotated before it would pass
 * log_max_bytes). */
void log_flush(void)
{
    size_t n = logger.npending;
    logger.npending = 0;
    if (!n)
        return;
    if (logger.to_stdout)
        write_all(STDOUT_FILENO, logger.pending, n);
    if (logger.fd >= 0) {
        if (logger.file_max && logger.file_bytes + n > logger.file_max)
            file_rotate();
        if (logger.fd >= 0) {
            write_all(logger.fd, logger.pending, n);
            logger.file_bytes += n;
        }
    }
}

static void flush_deferred(void *ctx)
{
    (void)ctx;
    logger.flush_queued = false;
    log_flush();
}

void log_set_batching(bool on)
{
    logger.batching = on;
    if (!on)
        log_flush();
}

/* A line to stdout and the file.  While the loop runs, lines of a busy
 * iteration go out in one write at its end (one write per request was a
 * tenth of a request's system calls); warnings and errors, and a full
 * buffer, go out at once, in order. */
static void emit(enum log_level lvl, const char *line, size_t n)
{
    if (!logger.to_stdout && logger.fd < 0)
        return;
    if (logger.npending + n > sizeof logger.pending)
        log_flush();
    if (n > sizeof logger.pending) {
        memcpy(logger.pending, line, 0);
        if (logger.to_stdout)
            write_all(STDOUT_FILENO, line, n);
        if (logger.fd >= 0) {
            write_all(logger.fd, line, n);
            logger.file_bytes += n;
        }
        return;
    }
    memcpy(logger.pending + logger.npending, line, n);
    logger.npending += n;
    if (!logger.batching || lvl >= LOG_WARN) {
        log_flush();
    } else if (!logger.flush_queued) {
        logger.flush_queued = true;
        loop_defer(flush_deferred, NULL);
    }
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (lvl < logger.min)
        return;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int mn = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (mn < 0)
        return;
    log_text(lvl, msg, (size_t)mn < sizeof msg ? (size_t)mn : sizeof msg - 1);
}

bool log_enabled(enum log_level lvl)
{
    return lvl >= logger.min;
}

void log_text(enum log_level lvl, const char *msg, size_t mlen)
{
    if (lvl < logger.min)
        return;
    if (mlen > LOG_LINE_MAX - 1)
        mlen = LOG_LINE_MAX - 1;
    /* Head + escaped message + newline; escaping can at most quadruple. */
    char line[64 + LOG_LINE_MAX * 4 + 2];
    size_t n = format_time(line, 40);
    size_t ln = strlen(level_name[lvl]);
    line[n++] = ' ';
    memcpy(line + n, level_name[lvl], ln);
    n += ln;
    line[n++] = ' ';
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < mlen; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c == 0x7f) {
            line[n++] = '\\';
            line[n++] = 'x';
            line[n++] = hex[c >> 4];
            line[n++] = hex[c & 15];
        } else {
            line[n++] = (char)c;
        }
    }
    line[n] = '\n';
    emit(lvl, line, n + 1);

    logger.seq++;
    if (logger.cap == 0)
        return;
    if (logger.count == logger.cap)
        ring_drop_oldest();
    size_t cap;
    char *text = mem_get(n + 1, &cap);
    if (!text)
        return;
    memcpy(text, line, n);
    text[n] = '\0';
    size_t slot = (logger.head + logger.count) % logger.cap;
    logger.ring[slot] = (struct ring_line){ logger.seq, text, n, cap };
    logger.count++;
}

uint64_t log_last_seq(void)
{
    return logger.seq;
}

void log_ring_each(uint64_t since, size_t max, log_line_fn fn, void *ctx)
{
    /* Lines are in seq order; skip to the first newer than `since`, then
     * keep only the newest `max` of those. */
    size_t first = 0;
    while (first < logger.count && logger.ring[(logger.head + first) % logger.cap].seq <= since)
        first++;
    size_t avail = logger.count - first;
    if (avail > max)
        first += avail - max;
    for (size_t i = first; i < logger.count; i++) {
        struct ring_line *l = &logger.ring[(logger.head + i) % logger.cap];
        fn(ctx, l->seq, l->text, l->len);
    }
}

int log_clear(void)
{
    while (logger.count)
        ring_drop_oldest();
    logger.head = 0;
    if (logger.fd >= 0) {
        if (ftruncate(logger.fd, 0) < 0)
            return -1;
        logger.file_bytes = 0;
    }
    return 0;
}
