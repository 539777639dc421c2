/*
 * swap_work.c: the workload of the swap case, the same for both
 * contenders (run in their child processes):
 *
 *	write		every page once, in page order
 *	random		--reads reads of pages chosen by a seeded generator
 *	reread		every page again, in page order
 *	random-mt	--reads random reads again, by --threads threads, each
 *			with its own seed
 *
 * A page carries SW_WORDS words derived from its index and the run's
 * tag, spread from its first to its last word, so that a page that comes
 * back from swap misplaced, truncated or stale (another run's, another
 * page's) fails the check; every read of every phase checks all of them.
 * The rest of the page stays zero.  Each phase is timed as a whole,
 * checks included: they cost nanoseconds against microseconds of paging,
 * and the same for both contenders.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <usrvm.h>

#include "bench.h"
#include "swap.h"

#define SW_WORDS	4	/* pattern words per page */

const char *const sw_phase_name[SW_NPHASES] = {
	"write", "random", "reread", "random-mt"
};

/*
 * The working set of one run.
 */
struct sw_mem {
	const struct sw_opts *o;
	char *base;
	uint64_t tag;
	const char *who;
	size_t word[SW_WORDS];		/* the pattern words' indexes */
	int described;			/* a wrong page was described */
};

/*
 * One reader of a random phase: `n` reads from the generator state
 * `seed`; `bad` counts the wrong ones.
 */
struct sw_reader {
	struct sw_mem *m;
	const char *phase;
	uint64_t seed;
	unsigned long n;
	unsigned long bad;
	pthread_barrier_t *start;
};

/*
 * sw_pattern: word k of page p, in m's run.
 */
static inline uint64_t
sw_pattern(const struct sw_mem *m, size_t p, unsigned k)
{
	return bench_mix64(((uint64_t)p * SW_WORDS + k) ^ m->tag);
}

/*
 * sw_check: read page p's pattern words.  The first wrong page of the
 * run is described on stderr (one line, whichever thread finds it).
 * => true if all are right.
 */
static bool
sw_check(struct sw_mem *m, size_t p, const char *phase)
{
	const volatile uint64_t *w =
	    (const volatile uint64_t *)(m->base + p * bench_pagesize);

	for (unsigned k = 0; k < SW_WORDS; k++) {
		uint64_t got = w[m->word[k]];

		if (got == sw_pattern(m, p, k))
			continue;
		if (__atomic_exchange_n(&m->described, 1,
		    __ATOMIC_RELAXED) == 0)
			fprintf(stderr, "%s: %s: %s: page %zu of %zu (%p) "
			    "word %zu reads %#" PRIx64 " (wrote %#" PRIx64
			    ")\n", m->o->prog, m->who, phase, p,
			    m->o->npages, (const void *)&w[m->word[k]],
			    m->word[k], got, sw_pattern(m, p, k));
		return false;
	}
	return true;
}

/*
 * sw_write: the write phase.
 * => its time, in seconds.
 */
static double
sw_write(struct sw_mem *m)
{
	double t0 = bench_now();

	for (size_t p = 0; p < m->o->npages; p++) {
		volatile uint64_t *w =
		    (volatile uint64_t *)(m->base + p * bench_pagesize);

		for (unsigned k = 0; k < SW_WORDS; k++)
			w[m->word[k]] = sw_pattern(m, p, k);
	}
	return bench_now() - t0;
}

/*
 * sw_reread: the sequential read phase; *bad: the wrong pages.
 * => its time, in seconds.
 */
static double
sw_reread(struct sw_mem *m, unsigned long *bad)
{
	double t0 = bench_now();

	*bad = 0;
	for (size_t p = 0; p < m->o->npages; p++)
		if (!sw_check(m, p, sw_phase_name[SW_REREAD]))
			(*bad)++;
	return bench_now() - t0;
}

/*
 * sw_read_random: one reader's reads, pages from splitmix64 (the
 * modulo's bias is negligible for any working set below 2^40 pages).
 */
static void
sw_read_random(struct sw_reader *rd)
{
	uint64_t s = rd->seed;

	for (unsigned long i = 0; i < rd->n; i++) {
		size_t p = (size_t)(bench_mix64(s++) % rd->m->o->npages);

		if (!sw_check(rd->m, p, rd->phase))
			rd->bad++;
	}
}

/*
 * sw_random: the single-threaded random phase; *bad: the wrong reads.
 * => its time, in seconds.
 */
static double
sw_random(struct sw_mem *m, unsigned long *bad)
{
	struct sw_reader rd = {
		.m = m, .phase = sw_phase_name[SW_RANDOM], .seed = m->o->seed,
		.n = m->o->reads,
	};
	double t0 = bench_now();

	sw_read_random(&rd);
	*bad = rd.bad;
	return bench_now() - t0;
}

static void *
sw_reader_thread(void *arg)
{
	struct sw_reader *rd = arg;

	pthread_barrier_wait(rd->start);
	sw_read_random(rd);
	return NULL;
}

/*
 * sw_random_mt: the threaded random phase: o->threads readers share the
 * reads, each from its own seed.  The threads exist before the clock
 * starts; the phase ends when the last has finished.
 * *bad: the wrong reads.
 * => its time in seconds, or -1 (a thread could not start; said).
 */
static double
sw_random_mt(struct sw_mem *m, unsigned long *bad)
{
	const struct sw_opts *o = m->o;
	struct sw_reader *rd;
	pthread_barrier_t start;
	pthread_t *tid;
	double t0, secs;
	int error;

	rd = calloc(o->threads, sizeof(*rd));
	tid = calloc(o->threads, sizeof(*tid));
	if (rd == NULL || tid == NULL) {
		fprintf(stderr, "%s: %s: no memory for %u readers\n", o->prog,
		    m->who, o->threads);
		free(rd);
		free(tid);
		return -1;
	}
	pthread_barrier_init(&start, NULL, o->threads + 1);
	for (unsigned t = 0; t < o->threads; t++) {
		rd[t] = (struct sw_reader){
			.m = m, .phase = sw_phase_name[SW_RANDOM_MT],
			.seed = bench_mix64(o->seed + 1 + t),
			.n = o->reads / o->threads +
			    (t < o->reads % o->threads),
			.start = &start,
		};
		error = pthread_create(&tid[t], NULL, sw_reader_thread, &rd[t]);
		if (error != 0) {
			/*
			 * The threads already started wait on the barrier
			 * for good: this process is a run's child, and
			 * exits on this error, which ends them.
			 */
			fprintf(stderr, "%s: %s: pthread_create: %s\n",
			    o->prog, m->who, strerror(error));
			return -1;
		}
	}
	pthread_barrier_wait(&start);
	t0 = bench_now();
	*bad = 0;
	for (unsigned t = 0; t < o->threads; t++) {
		pthread_join(tid[t], NULL);
		*bad += rd[t].bad;
	}
	secs = bench_now() - t0;
	pthread_barrier_destroy(&start);
	free(rd);
	free(tid);
	return secs;
}

uint64_t
sw_phase_pages(const struct sw_opts *o, enum sw_phase ph)
{
	return ph == SW_WRITE || ph == SW_REREAD ? o->npages : o->reads;
}

/*
 * sw_wrong: say how many reads of a phase were wrong, if any.
 * => 0 (none) or 1.
 */
static int
sw_wrong(const struct sw_mem *m, enum sw_phase ph, unsigned long bad)
{
	if (bad == 0)
		return 0;
	fprintf(stderr, "%s: %s: %s: %lu of %" PRIu64 " reads wrong\n",
	    m->o->prog, m->who, sw_phase_name[ph], bad,
	    sw_phase_pages(m->o, ph));
	return 1;
}

/* The process's CPU time so far, and usrvm's page-ins and reads. */
static void
sw_sample(struct sw_cost *c)
{
	struct usrvm_stats st;
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	c->cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	(void)usrvm_stats(&st);
	c->pageins = st.pageins;
	c->reads = st.swap_reads;
}

/* cost[ph] from the samples before and after it, and its time. */
static void
sw_cost(struct sw_cost *cost, const struct sw_cost *before, double secs)
{
	struct sw_cost after;

	sw_sample(&after);
	cost->secs = secs;
	cost->cpu = after.cpu - before->cpu;
	cost->pageins = after.pageins - before->pageins;
	cost->reads = after.reads - before->reads;
}

int
sw_workload(const struct sw_opts *o, char *base, const char *who,
    uint64_t tag, struct sw_cost cost[SW_NPHASES])
{
	struct sw_mem m = { .o = o, .base = base, .tag = tag, .who = who };
	const size_t last = bench_pagesize / 8 - 1;
	struct sw_cost before;
	unsigned long bad;
	double secs;

	for (unsigned k = 0; k < SW_WORDS; k++)
		m.word[k] = k * last / (SW_WORDS - 1);

	sw_sample(&before);
	sw_cost(&cost[SW_WRITE], &before, sw_write(&m));
	sw_sample(&before);
	sw_cost(&cost[SW_RANDOM], &before, sw_random(&m, &bad));
	if (sw_wrong(&m, SW_RANDOM, bad) != 0)
		return 1;
	sw_sample(&before);
	sw_cost(&cost[SW_REREAD], &before, sw_reread(&m, &bad));
	if (sw_wrong(&m, SW_REREAD, bad) != 0)
		return 1;
	sw_sample(&before);
	if ((secs = sw_random_mt(&m, &bad)) < 0)
		return 1;
	sw_cost(&cost[SW_RANDOM_MT], &before, secs);
	return sw_wrong(&m, SW_RANDOM_MT, bad);
}
