/*
 * usrvm-bench-realloc: a workload of the malloc case of usrvm-bench
 * (malloc.c): buffers growing by realloc, one thread.
 *
 *	usrvm-bench-realloc BUFFERS ROUNDS MAXKB
 *
 * Each round grows BUFFERS buffers at once, in turn (so a buffer's
 * neighbour in the heap is rarely free), by appends of 16 to 256 bytes
 * until each reaches its own target size, drawn log-uniformly from 64
 * bytes to MAXKB KiB; then every buffer is checked and freed.  Half the
 * buffers are reallocated to the exact new length at every append (a
 * naive string builder: the allocator's slack and in-place growth
 * matter), the other half grow their capacity by half when full (a
 * vector).  Prints a checksum of what was read back, which does not
 * depend on the allocator; exit status 1 if an allocation fails or a
 * buffer does not read back.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct buf {
	unsigned char *p;
	size_t len, cap, target;
	unsigned id;
};

static uint64_t rng_state;

static inline uint64_t
rng(void)
{
	uint64_t x = rng_state;

	rng_state += 0x9e3779b97f4a7c15ULL;
	return bench_mix64(x);	/* splitmix64 */
}

/* The byte at offset off of buffer id. */
static inline unsigned char
pattern(unsigned id, size_t off)
{
	return (unsigned char)(id * 31 + (off >> 4));
}

static void
grow(struct buf *b, size_t add)
{
	size_t want = b->len + add;
	unsigned char *q;

	if (want > b->cap) {
		size_t cap = want;

		if (b->id % 2 == 1 && b->cap + b->cap / 2 > cap)
			cap = b->cap + b->cap / 2;
		if ((q = realloc(b->p, cap)) == NULL) {
			fprintf(stderr, "usrvm-bench-realloc: out of memory\n");
			exit(1);
		}
		b->p = q;
		b->cap = cap;
	}
	for (size_t off = b->len; off < want; off++)
		b->p[off] = pattern(b->id, off);
	b->len = want;
}

static uint64_t
check(const struct buf *b)
{
	size_t probe[3] = { 0, b->len / 2, b->len - 1 };
	uint64_t sum = 0;

	for (int i = 0; i < 3; i++) {
		if (b->p[probe[i]] != pattern(b->id, probe[i])) {
			fprintf(stderr, "usrvm-bench-realloc: buffer %u of %zu "
			    "bytes: byte %zu does not read back\n", b->id,
			    b->len, probe[i]);
			exit(1);
		}
		sum += b->p[probe[i]];
	}
	return sum + b->len;
}

int
main(int argc, char **argv)
{
	unsigned nbuf = argc > 3 ? (unsigned)atoi(argv[1]) : 0;
	unsigned rounds = argc > 3 ? (unsigned)atoi(argv[2]) : 0;
	double maxb = argc > 3 ? atof(argv[3]) * 1024 : 0;
	uint64_t sum = 0, reallocs = 0;
	struct buf *bufs;

	if (nbuf == 0 || rounds == 0 || maxb < 64) {
		fprintf(stderr, "usage: usrvm-bench-realloc BUFFERS ROUNDS "
		    "MAXKB\n");
		return 2;
	}
	rng_state = 0x5eedf00dULL;
	if ((bufs = calloc(nbuf, sizeof(*bufs))) == NULL) {
		fprintf(stderr, "usrvm-bench-realloc: out of memory\n");
		return 1;
	}
	for (unsigned r = 0; r < rounds; r++) {
		unsigned live = nbuf;

		for (unsigned i = 0; i < nbuf; i++) {
			double u = (double)(rng() >> 11) / 9007199254740992.0;

			bufs[i].p = NULL;
			bufs[i].len = bufs[i].cap = 0;
			bufs[i].id = r * nbuf + i;
			bufs[i].target = (size_t)(64 * exp(u * log(maxb / 64)));
		}
		while (live > 0) {
			live = 0;
			for (unsigned i = 0; i < nbuf; i++) {
				struct buf *b = &bufs[i];

				if (b->len >= b->target)
					continue;
				grow(b, 16 + rng() % 241);
				reallocs++;
				live++;
			}
		}
		for (unsigned i = 0; i < nbuf; i++) {
			sum += check(&bufs[i]);
			free(bufs[i].p);
		}
	}
	free(bufs);
	printf("realloc buffers=%u rounds=%u appends=%llu checksum=%llu\n",
	    nbuf, rounds, (unsigned long long)reallocs,
	    (unsigned long long)sum);
	return 0;
}
