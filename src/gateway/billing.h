/* billing: the tokens of a request, charged to the key that sent it.
 *
 * Every attempt that ended with an answer the client got (a success, or a
 * stream that broke after some of it was delivered) is charged with the
 * usage its upstream reported, to (key, alias, provider, upstream);
 * failed attempts the client never saw are not.  A streamed chat whose
 * client did not ask for usage gets stream_options.include_usage added
 * (the engine then hides that chunk from the client), unless the
 * provider says stream_usage: false or refused the option once already
 * (remembered for the life of the process). */
#ifndef AUTOSWITCH_BILLING_H
#define AUTOSWITCH_BILLING_H

#include <stdbool.h>

#include "attempt.h"
#include "buf.h"
#include "endpoint.h"
#include "keys.h"
#include "reqbody.h"
#include "snapshot.h"

#define BILL_REFUSERS_MAX 64   /* providers remembered as refusing stream_options */

struct bill {
    const struct principal *who;   /* NULL: nobody to charge (no /v1 key check ran) */
    const char *alias;
    enum dialect dialect;
    struct tokens sum;             /* everything charged for this request */
    bool any;
};

/* Whether an attempt on prov asks for usage the client did not. */
bool bill_inject_usage(const struct endpoint *ep, const struct reqbody *rb, const struct cfg_provider *prov);
/* prov answered 400 to the stream_options the gateway added. */
void bill_option_refused(const char *provider);
/* One attempt's end. */
void bill_attempt(struct bill *b, const struct candidate *c, const struct att_outcome *o);
/* " key=NAME tokens=PROMPT/COMPLETION" for the access log. */
void bill_note(const struct bill *b, struct buf *note);
/* At exit. */
void bill_free(void);

#endif
