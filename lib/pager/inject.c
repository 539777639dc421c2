/*
 * inject.c: fault injection (see inject.h).
 */
#include <stdatomic.h>

#include "pager/inject.h"
#include "usrvm_internal.h"

#define INJECT_KINDS	USRVM_INJECT_FILE_WRITE

static struct {
	_Atomic unsigned count;
	_Atomic int error;
} inject_tab[INJECT_KINDS + 1];

int
usrvm_inject(int what, int error, unsigned count)
{
	if (what < USRVM_INJECT_SWAP_READ || what > INJECT_KINDS ||
	    error <= 0 || error >= 4096)
		return -EINVAL;
	inject_tab[what].error = error;
	inject_tab[what].count = count;
	return 0;
}

int
inject_take(int what)
{
	unsigned c = atomic_load_explicit(&inject_tab[what].count,
	    memory_order_relaxed);

	while (c > 0) {
		if (atomic_compare_exchange_weak(&inject_tab[what].count, &c,
		    c - 1))
			return inject_tab[what].error;
	}
	return 0;
}

void
inject_reset(void)
{
	for (int i = 0; i <= INJECT_KINDS; i++)
		inject_tab[i].count = 0;
}
