/* log: levelled log lines to stdout, an in-memory ring and an optional file.
 *
 * Line format: "YYYY-MM-DD HH:MM:SS.mmm LEVEL message" in local time (TZ).
 * Control characters in a message are escaped, so text that came from a
 * client or an upstream can never forge a second line.  Callers never pass
 * secrets (API keys, Authorization headers) to these functions. */
#ifndef AUTOSWITCH_LOG_H
#define AUTOSWITCH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_LINE_MAX 2048                 /* longer messages are cut */
#define LOG_PENDING_MAX 16384             /* lines waiting for one write (more than one escaped line) */
#define LOG_FILE_KEEP 3                   /* rotated files kept: file.1 .. file.3 */

void log_init(void);
void log_shutdown(void);
/* Resize the ring (keeps the newest lines) and (re)open the log file;
 * file NULL or "" = no file; the file is rotated past max_bytes.  0, or
 * -1 when the file cannot be opened. */
int log_configure(size_t ring_lines, const char *file, uint64_t max_bytes);
void log_set_level(enum log_level min);
/* Also write to stdout (on by default; tests of the ring may turn it off). */
void log_set_stdout(int on);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a message already made (no formatting): msg[0, len). */
void log_text(enum log_level lvl, const char *msg, size_t len);
/* While the loop runs (on), INFO and DEBUG lines are written at the end of
 * the loop iteration, all in one write; off writes what waits. */
void log_set_batching(bool on);
/* Write what waits now. */
void log_flush(void);
/* Whether a line of this level would be written at all. */
bool log_enabled(enum log_level lvl);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Sequence number of the newest line (0 before the first). */
uint64_t log_last_seq(void);
typedef void (*log_line_fn)(void *ctx, uint64_t seq, const char *line, size_t len);
/* Call fn for the newest `max` ring lines whose seq > since, oldest first. */
void log_ring_each(uint64_t since, size_t max, log_line_fn fn, void *ctx);
/* Empty the ring and truncate the log file.  0, or -1 with errno. */
int log_clear(void);

#endif
