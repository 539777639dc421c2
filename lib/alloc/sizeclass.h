/*
 * sizeclass.h: the small size classes of the allocator.
 *
 * 40 classes from 16 bytes to 32 KiB: 16-byte steps up to 128, then four
 * steps per doubling (at most 25% internal waste).  Every class size is a
 * multiple of 16, so every object is 16-byte aligned; the power-of-two
 * classes also serve aligned requests up to a page (an object of class c
 * lies at a multiple of sc_size(c) from a page-aligned span start).
 *
 * A span of class c is sc_pages(c) pages holding sc_nobj(c) objects
 * (at most SC_MAXOBJ), chosen so that no more than 1/8 of it is waste.
 */
#ifndef USRVM_SIZECLASS_H
#define USRVM_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#define SC_NCLASS	40
#define SC_MAXSIZE	32768		/* the largest small object */
#define SC_MAXOBJ	256		/* objects per span, at most */
#define SC_TCACHE_MAXBATCH	128	/* objects per refill or flush, at most */

struct sizeclass {
	uint32_t sc_size;		/* object size in bytes */
	uint32_t sc_recip;		/* ceil(2^32 / size): offset -> index */
	uint16_t sc_pages;		/* span size in pages */
	uint16_t sc_nobj;		/* objects per span */
	uint16_t sc_tcache;		/* objects a thread cache holds */
	uint16_t sc_batch;		/* objects moved per refill or flush */
};

extern struct sizeclass sc_table[SC_NCLASS];

/* Fill sc_table.  Idempotent; called by alloc_init. */
void sc_init(void);

/* The class of a request of n bytes, 0 < n <= SC_MAXSIZE (0 counts as 1). */
static inline unsigned
sc_class(size_t n)
{
	unsigned k;

	if (n <= 128)
		return n == 0 ? 0 : (unsigned)(n - 1) >> 4;
	k = 63 - (unsigned)__builtin_clzll(n - 1);	/* 2^k < n <= 2^(k+1) */
	return 8 + (k - 7) * 4 + (unsigned)((n - 1 - ((size_t)1 << k)) >>
	    (k - 2));
}

/* The index of the object at byte `off` of a span of class c. */
static inline unsigned
sc_index(unsigned c, size_t off)
{
	return (unsigned)((off * sc_table[c].sc_recip) >> 32);
}

#endif /* USRVM_SIZECLASS_H */
