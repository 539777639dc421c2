/*
 * sizeclass.c: the size-class table (see sizeclass.h).
 */
#include "sizeclass.h"
#include "usrvm_internal.h"

struct sizeclass sc_table[SC_NCLASS];

/* Bytes a thread cache may hold of one class, and its object bounds. */
#define SC_TCACHE_BYTES	(64 * 1024)
#define SC_TCACHE_MIN	4
#define SC_TCACHE_MAX	SC_TCACHE_MAXBATCH
/* Objects a span should hold, and the bounds on that. */
#define SC_SPAN_BYTES	(64 * 1024)
#define SC_SPAN_MINOBJ	4

static uint32_t
sc_size_of(unsigned c)
{
	unsigned k;

	if (c < 8)
		return 16 * (c + 1);
	k = 7 + (c - 8) / 4;
	return (uint32_t)((1u << k) + ((c - 8) % 4 + 1) * (1u << (k - 2)));
}

void
sc_init(void)
{
	for (unsigned c = 0; c < SC_NCLASS; c++) {
		struct sizeclass *sc = &sc_table[c];
		uint32_t size = sc_size_of(c);
		unsigned want = MAX(SC_SPAN_MINOBJ,
		    MIN(SC_MAXOBJ, SC_SPAN_BYTES / size));
		unsigned pages = (unsigned)((want * size + PAGE_SIZE - 1) /
		    PAGE_SIZE);

		/* More pages until the tail waste is at most 1/8. */
		while ((ptoa(pages) % size) * 8 > ptoa(pages) &&
		    ptoa(pages + 1) / size <= SC_MAXOBJ)
			pages++;
		sc->sc_size = size;
		sc->sc_recip = (uint32_t)((((uint64_t)1 << 32) + size - 1) /
		    size);
		sc->sc_pages = (uint16_t)pages;
		sc->sc_nobj = (uint16_t)MIN(SC_MAXOBJ, ptoa(pages) / size);
		sc->sc_tcache = (uint16_t)MAX(SC_TCACHE_MIN,
		    MIN(SC_TCACHE_MAX, SC_TCACHE_BYTES / size));
		sc->sc_batch = (uint16_t)MAX(1, sc->sc_tcache / 2);
		KASSERT(c == 0 || sc_class(size) == c);
		KASSERT(sc_class(size + 1) == c + 1 || c + 1 == SC_NCLASS);
	}
}
