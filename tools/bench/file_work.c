/*
 * file_work.c: the data file of the file case and the workload over a
 * mapping of it, the same for every contender (run in their children):
 *
 *	random		--reads reads of pages chosen by a seeded generator,
 *			each checking FL_CHECKS words of the page
 *	sequential	every page in order, checking one word of each
 *	write		one word into each of a random quarter of the pages,
 *			in random order, through a writable mapping; then
 *			the contender's sync, and the file read back with
 *			O_DIRECT (untimed) to see that every word got there
 *
 * Every word of the file is a hash of its page, its place in the page
 * and the file's tag, so that a page read from the wrong offset, cut
 * short or never read fails the check; the check words are spread from a
 * page's first word to its last.  The checks are timed with the phases:
 * nanoseconds against the microseconds of a page-in, and the same for
 * every contender.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "file.h"

#define FL_CHECKS	4		/* words a random read checks */
#define FL_CHUNK	((size_t)8 << 20)	/* file I/O, bytes */
#define FL_CLOCK_EVERY	64		/* steps between looks at a limit */

const char *const fl_phase_name[FL_NPHASES] = {
	"random", "sequential", "write"
};

/*
 * fl_pattern: word i of page p of the data file made with `tag`.
 */
static inline uint64_t
fl_pattern(uint64_t tag, size_t p, size_t i)
{
	return bench_mix64(((uint64_t)p * (bench_pagesize / 8) + i) ^ tag);
}

/*
 * fl_written: the word the write phase of the run tagged `runtag` puts
 * at FL_WWORD of page p.
 */
static inline uint64_t
fl_written(uint64_t runtag, size_t p)
{
	return bench_mix64((uint64_t)p ^ runtag);
}

/*
 * fl_check_word: the index of check word k (0 to FL_CHECKS-1): the
 * first, the last, and evenly between; never FL_WWORD.
 */
static inline size_t
fl_check_word(unsigned k)
{
	return k * (bench_pagesize / 8 - 1) / (FL_CHECKS - 1);
}

/*
 * fl_wrong: describe a word that does not read what the file holds.
 */
static void
fl_wrong(const struct fl_opts *o, const char *who, const char *phase,
    size_t p, size_t i, uint64_t got, uint64_t want)
{
	fprintf(stderr, "%s: %s: %s: page %zu of %zu word %zu reads %#"
	    PRIx64 " (the file holds %#" PRIx64 ")\n", o->prog, who, phase,
	    p, o->npages, i, got, want);
}

/*
 * fl_file_fill: write the pattern into the data file on fd, FL_CHUNK
 * bytes a write, and make it durable: the runs drop the page cache,
 * which only drops clean pages.
 * => 0 or an errno value.
 */
int
fl_file_fill(const struct fl_opts *o, int fd)
{
	const size_t wpp = bench_pagesize / 8;
	uint64_t *buf;
	int error = 0;

	if ((error = posix_fallocate(fd, 0, (off_t)o->size)) != 0)
		return error;
	if ((buf = malloc(FL_CHUNK)) == NULL)
		return ENOMEM;
	for (size_t off = 0; off < o->size && error == 0; off += FL_CHUNK) {
		size_t len = o->size - off < FL_CHUNK ? o->size - off :
		    FL_CHUNK;
		size_t p0 = off / bench_pagesize;

		for (size_t p = 0; p < len / bench_pagesize; p++)
			for (size_t i = 0; i < wpp; i++)
				buf[p * wpp + i] = fl_pattern(o->tag, p0 + p,
				    i);
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
			error = errno != 0 ? errno : EIO;
	}
	free(buf);
	if (error == 0 && fdatasync(fd) != 0)
		error = errno;
	return error;
}

/*
 * fl_random: the random phase over the mapping at base: o->reads reads
 * of pages from splitmix64 (bench_mix64 of a counter from the seed; the
 * modulo's bias is negligible below 2^40 pages), the same pages for
 * every contender.  limit: seconds after which it stops (0: none).
 * => 0, or 1 (a wrong word; said).
 */
int
fl_random(const struct fl_opts *o, const char *base, const char *who,
    unsigned limit, struct fl_phase_res *ph)
{
	uint64_t s = o->seed;
	double t0 = bench_now();
	unsigned long i;

	ph->capped = false;
	for (i = 0; i < o->reads; i++) {
		size_t p = (size_t)(bench_mix64(s++) % o->npages);
		const volatile uint64_t *w =
		    (const volatile uint64_t *)(base + p * bench_pagesize);

		for (unsigned k = 0; k < FL_CHECKS; k++) {
			size_t wi = fl_check_word(k);
			uint64_t got = w[wi];

			if (got != fl_pattern(o->tag, p, wi)) {
				fl_wrong(o, who, fl_phase_name[FL_RANDOM], p,
				    wi, got, fl_pattern(o->tag, p, wi));
				return 1;
			}
		}
		if (limit != 0 && i % FL_CLOCK_EVERY == FL_CLOCK_EVERY - 1 &&
		    bench_now() - t0 >= limit) {
			ph->capped = i + 1 < o->reads;
			i++;
			break;
		}
	}
	ph->secs = bench_now() - t0;
	ph->done = i;
	return 0;
}

/*
 * fl_scan: the sequential phase: every page in order, one word of each
 * (the check words in turn, so that every part of a page is looked at
 * somewhere).
 * => 0, or 1 (a wrong word; said).
 */
int
fl_scan(const struct fl_opts *o, const char *base, const char *who,
    struct fl_phase_res *ph)
{
	double t0 = bench_now();

	for (size_t p = 0; p < o->npages; p++) {
		size_t wi = fl_check_word(p % FL_CHECKS);
		uint64_t got = ((const volatile uint64_t *)(base +
		    p * bench_pagesize))[wi];

		if (got != fl_pattern(o->tag, p, wi)) {
			fl_wrong(o, who, fl_phase_name[FL_SCAN], p, wi, got,
			    fl_pattern(o->tag, p, wi));
			return 1;
		}
	}
	ph->secs = bench_now() - t0;
	ph->done = o->npages;
	ph->capped = false;
	return 0;
}

/*
 * fl_write_order: the pages the write phase of the run tagged runtag
 * writes, in the order it writes them: a quarter of the file (at least
 * one page), drawn by a partial Fisher-Yates shuffle.  Made before the
 * clock starts; the caller frees it.
 * => the array with *n entries, or NULL (no memory).
 */
uint32_t *
fl_write_order(const struct fl_opts *o, uint64_t runtag, size_t *n)
{
	uint32_t *order = malloc(o->npages * sizeof(*order));
	size_t want = o->npages / 4 > 0 ? o->npages / 4 : 1;

	if (order == NULL)
		return NULL;
	for (size_t p = 0; p < o->npages; p++)
		order[p] = (uint32_t)p;
	for (size_t i = 0; i < want; i++) {
		size_t j = i + (size_t)(bench_mix64(runtag + i) %
		    (o->npages - i));
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	*n = want;
	return order;
}

/*
 * fl_write: the writes of the write phase through the writable mapping
 * at base: word FL_WWORD of pages order[0..n-1].  limit: seconds after
 * which it stops (0: none); ph->done says how many were written.
 */
void
fl_write(char *base, const uint32_t *order, size_t n, uint64_t runtag,
    unsigned limit, struct fl_phase_res *ph)
{
	double t0 = bench_now();
	size_t i;

	ph->capped = false;
	for (i = 0; i < n; i++) {
		size_t p = order[i];

		((volatile uint64_t *)(base + p * bench_pagesize))[FL_WWORD] =
		    fl_written(runtag, p);
		if (limit != 0 && i % FL_CLOCK_EVERY == FL_CLOCK_EVERY - 1 &&
		    bench_now() - t0 >= limit) {
			ph->capped = i + 1 < n;
			i++;
			break;
		}
	}
	ph->secs = bench_now() - t0;
	ph->done = i;
}

/*
 * fl_verify: after the sync, read the whole file with O_DIRECT (what is
 * on the device, not what a cache holds) and check every page: its check
 * words as made, and its FL_WWORD the run's word if it is one of the n
 * pages of order[] written.
 * => 0, or 1 (a wrong word or a failed read; said).
 */
int
fl_verify(const struct fl_opts *o, const char *who, uint64_t runtag,
    const uint32_t *order, size_t n)
{
	const char *phase = "write (read back with O_DIRECT)";
	const size_t wpp = bench_pagesize / 8;
	uint64_t *written, *buf = NULL;
	int fd, bad = 0;

	written = calloc((o->npages + 63) / 64, sizeof(*written));
	if (written == NULL ||
	    posix_memalign((void **)&buf, bench_pagesize, FL_CHUNK) != 0) {
		fprintf(stderr, "%s: %s: no memory to read the file back\n",
		    o->prog, who);
		free(written);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		written[order[i] / 64] |= (uint64_t)1 << (order[i] % 64);
	if ((fd = open(o->path, O_RDONLY | O_DIRECT | O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s: open %s (O_DIRECT): %s\n", o->prog,
		    who, o->path, strerror(errno));
		bad = 1;
	}
	for (size_t off = 0; off < o->size && !bad; off += FL_CHUNK) {
		size_t len = o->size - off < FL_CHUNK ? o->size - off :
		    FL_CHUNK;
		ssize_t got = pread(fd, buf, len, (off_t)off);

		if (got != (ssize_t)len) {
			fprintf(stderr, "%s: %s: reading %s back at %zu: %s\n",
			    o->prog, who, o->path, off, got < 0 ?
			    strerror(errno) : "short read");
			bad = 1;
			break;
		}
		for (size_t q = 0; q < len / bench_pagesize && !bad; q++) {
			size_t p = off / bench_pagesize + q;
			const uint64_t *w = buf + q * wpp;

			for (unsigned k = 0; k < FL_CHECKS && !bad; k++) {
				size_t wi = fl_check_word(k);

				if (w[wi] != fl_pattern(o->tag, p, wi)) {
					fl_wrong(o, who, phase, p, wi, w[wi],
					    fl_pattern(o->tag, p, wi));
					bad = 1;
				}
			}
			if (!bad && (written[p / 64] >> (p % 64) & 1) &&
			    w[FL_WWORD] != fl_written(runtag, p)) {
				fprintf(stderr, "%s: %s: %s: page %zu of %zu "
				    "word %d reads %#" PRIx64 " (the run "
				    "wrote %#" PRIx64 ")\n", o->prog, who,
				    phase, p, o->npages, FL_WWORD,
				    w[FL_WWORD], fl_written(runtag, p));
				bad = 1;
			}
		}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(written);
	return bad;
}
