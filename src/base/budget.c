#include "budget.h"

static struct {
    uint64_t limit;
    uint64_t used;
} budget = { BUDGET_DEFAULT, 0 };

void budget_set_limit(uint64_t max)
{
    budget.limit = max;
}

uint64_t budget_limit(void)
{
    return budget.limit;
}

void budget_add(uint64_t n)
{
    budget.used += n;
}

void budget_sub(uint64_t n)
{
    /* A holder never gives back more than it took; be safe anyway. */
    budget.used = n > budget.used ? 0 : budget.used - n;
}

uint64_t budget_used(void)
{
    return budget.used;
}

bool budget_allows(uint64_t n)
{
    return budget.used + n <= budget.limit;
}
