#include "guard.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "loop.h"
#include "netaddr.h"

struct bucket {
    char key[NETADDR_TEXT_MAX + 4];   /* the client's group */
    double tokens;
    uint64_t last;                    /* monotonic ms of the last refill */
};

static struct bucket buckets[GUARD_TABLE];

/* The client's bucket, refilled to now (a new one for a new client,
 * taking the slot of the one seen longest ago). */
static struct bucket *bucket_of(const char *client)
{
    char key[sizeof buckets[0].key];
    netaddr_group(client, key, sizeof key);
    uint64_t now = loop_now();
    struct bucket *b = NULL, *oldest = &buckets[0];
    for (size_t i = 0; i < GUARD_TABLE && !b; i++) {
        if (buckets[i].key[0] && strcmp(buckets[i].key, key) == 0)
            b = &buckets[i];
        else if (!buckets[i].key[0] || buckets[i].last < oldest->last)
            oldest = &buckets[i];
    }
    if (!b) {
        b = oldest;
        snprintf(b->key, sizeof b->key, "%s", key);
        b->tokens = GUARD_BURST;
        b->last = now;
    }
    b->tokens += (double)(now - b->last) / GUARD_REFILL_MS;
    if (b->tokens > GUARD_BURST)
        b->tokens = GUARD_BURST;
    b->last = now;
    return b;
}

bool guard_open(const char *client, unsigned *retry_s)
{
    struct bucket *b = bucket_of(client);
    if (b->tokens >= 1.0)
        return true;
    *retry_s = (unsigned)((1.0 - b->tokens) * GUARD_REFILL_MS / 1000.0) + 1;
    return false;
}

void guard_failed(const char *client)
{
    struct bucket *b = bucket_of(client);
    b->tokens = b->tokens >= 1.0 ? b->tokens - 1.0 : 0.0;
}
