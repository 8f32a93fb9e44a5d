/* budget: one limit for the memory that clients can make us hold.
 *
 * Request bodies being read, whole answers buffered before they are sent,
 * and answers queued for clients that read slowly all count against one
 * budget (max_buffered_bytes), so a few hostile or slow clients cannot
 * grow the process without bound: past it, a new large body is refused
 * (503) and the slowest reader of a queued answer is cut
 * (server_reclaim).  Plain counting, no allocation: the holders report
 * what they hold. */
#ifndef AUTOSWITCH_BUDGET_H
#define AUTOSWITCH_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#define BUDGET_DEFAULT ((uint64_t)64 << 20)

void budget_set_limit(uint64_t max);
uint64_t budget_limit(void);
/* n more bytes are held / let go. */
void budget_add(uint64_t n);
void budget_sub(uint64_t n);
uint64_t budget_used(void);
/* Whether n more bytes would stay within the limit. */
bool budget_allows(uint64_t n);

#endif
