/*
 * stats.c: counters and the public usrvm_stats()/usrvm_stats_print().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "page.h"
#include "pager/swap.h"
#include "pdpolicy.h"
#include "stats.h"
#include "usrvm_internal.h"

struct usrvm_counters usrvm_cnt;

void
stats_reset(void)
{
	memset(&usrvm_cnt, 0, sizeof(usrvm_cnt));
}

void
stats_fault_latency(uint64_t ns)
{
	unsigned b = ns == 0 ? 0 : 63 - __builtin_clzll(ns);

	if (b >= USRVM_LAT_BUCKETS)
		b = USRVM_LAT_BUCKETS - 1;
	CNT_INC(fault_lat_ns[b]);
	stats_max(&usrvm_cnt.fault_lat_max_ns, ns);
}

void
stats_max(_Atomic uint64_t *m, uint64_t v)
{
	uint64_t max = atomic_load_explicit(m, memory_order_relaxed);

	while (v > max && !atomic_compare_exchange_weak_explicit(m, &max, v,
	    memory_order_relaxed, memory_order_relaxed))
		continue;
}

void
stats_resident_add(long n)
{
	int64_t now = CNT_ADD(resident, n) + n;
	int64_t peak = atomic_load_explicit(&usrvm_cnt.resident_peak,
	    memory_order_relaxed);

	while (now > peak && !atomic_compare_exchange_weak_explicit(
	    &usrvm_cnt.resident_peak, &peak, now, memory_order_relaxed,
	    memory_order_relaxed))
		continue;
}

#define LOAD(f)	atomic_load_explicit(&usrvm_cnt.f, memory_order_relaxed)

/*
 * A percentile of the latency histogram: the upper bound of the bucket
 * holding it (so p50 = 8191 means "between 4096 and 8191 ns").
 */
static uint64_t
stats_percentile(const uint64_t *h, uint64_t total, unsigned pct)
{
	uint64_t want = (total * pct + 99) / 100, seen = 0;

	if (total == 0)
		return 0;
	for (unsigned b = 0; b < USRVM_LAT_BUCKETS; b++) {
		seen += h[b];
		if (seen >= want)
			return ((uint64_t)2 << b) - 1;
	}
	return UINT64_MAX;
}

/* The budget, the queues and the swap device, from their owners. */
static void
stats_paging(struct usrvm_stats *st)
{
	st->mem_limit = page_budget();
	st->commit_limit = page_commit_limit();
	if (st->mem_limit == 0)
		return;
	pageq_lock();
	st->pages_active = pageq_policy()->p_active.q_len;
	st->pages_inactive = pageq_policy()->p_inactive.q_len;
	pageq_unlock();
	st->swap_slots = swap_nslots();
	st->swap_slots_used = swap_used();
	st->swap_slots_bad = swap_bad();
}

int
usrvm_stats(struct usrvm_stats *st)
{
	uint64_t total = 0;

	if (st == NULL)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->faults = LOAD(faults);
	st->faults_zero = LOAD(faults_zero);
	st->faults_upper = LOAD(faults_upper);
	st->faults_lower = LOAD(faults_lower);
	st->faults_cow = LOAD(faults_cow);
	st->faults_cow_move = LOAD(faults_cow_move);
	st->faults_wp = LOAD(faults_wp);
	st->faults_dup = LOAD(faults_dup);
	st->faults_error = LOAD(faults_error);
	st->pages_zero_mapped = LOAD(pages_zero_mapped);
	st->pages_filled = LOAD(pages_filled);
	st->resident = (uint64_t)MAX(LOAD(resident), 0);
	st->resident_peak = (uint64_t)MAX(LOAD(resident_peak), 0);
	st->anons = (uint64_t)MAX(LOAD(anons), 0);
	st->aobjs = (uint64_t)MAX(LOAD(aobjs), 0);
	st->pages_loaned = (uint64_t)MAX(LOAD(pages_loaned), 0);
	st->pages_dup = (uint64_t)MAX(LOAD(pages_dup), 0);
	st->loan_copies = LOAD(loan_copies);
	st->map_entries = (uint64_t)MAX(LOAD(map_entries), 0);
	st->spaces = (uint64_t)MAX(LOAD(spaces), 0);
	st->forks = LOAD(forks);
	st->amap_copies = LOAD(amap_copies);
	stats_paging(st);
	st->committed = (uint64_t)MAX(LOAD(committed), 0);
	st->pageins = LOAD(pageins);
	st->pageouts = LOAD(pageouts);
	st->swap_reads = LOAD(swap_reads);
	st->swap_writes = LOAD(swap_writes);
	st->swap_write_max = LOAD(swap_write_max);
	st->pd_scans = LOAD(pd_scans);
	st->pd_deactivations = LOAD(pd_deactivations);
	st->pd_reactivations = LOAD(pd_reactivations);
	st->evict_clean = LOAD(pd_evict_clean);
	st->evict_zero = LOAD(pd_evict_zero);
	st->evict_dirty = LOAD(pd_evict_dirty);
	st->pageout_kept = LOAD(pd_pageout_kept);
	st->pd_unmovable = LOAD(pd_unmovable);
	st->pd_swapfull = LOAD(pd_swapfull);
	st->pd_grace = LOAD(pd_grace);
	st->evict_file = LOAD(pd_evict_file);
	st->stalls = LOAD(stalls);
	st->stall_ns = LOAD(stall_ns);
	st->io_errors_read = LOAD(io_errors_read);
	st->io_errors_write = LOAD(io_errors_write);
	st->pages_lost = LOAD(pages_lost);
	st->objects = (uint64_t)MAX(LOAD(objects), 0);
	st->object_hits = LOAD(obj_hits);
	st->object_misses = LOAD(obj_misses);
	st->file_pageins = LOAD(file_pageins);
	st->file_reads = LOAD(file_reads);
	st->file_read_max = LOAD(file_read_max);
	st->file_ra_pages = LOAD(file_ra_pages);
	st->file_pageouts = LOAD(file_pageouts);
	st->file_writes = LOAD(file_writes);
	st->file_write_ns = LOAD(file_write_ns);
	st->file_errors_read = LOAD(file_errors_read);
	st->file_errors_write = LOAD(file_errors_write);
	st->events_remove = LOAD(events_remove);
	st->events_unmap = LOAD(events_unmap);
	st->events_remap = LOAD(events_remap);
	for (unsigned b = 0; b < USRVM_LAT_BUCKETS; b++) {
		st->fault_lat_ns[b] = LOAD(fault_lat_ns[b]);
		total += st->fault_lat_ns[b];
	}
	st->fault_lat_p50_ns = stats_percentile(st->fault_lat_ns, total, 50);
	st->fault_lat_p99_ns = stats_percentile(st->fault_lat_ns, total, 99);
	st->fault_lat_max_ns = LOAD(fault_lat_max_ns);
	return 0;
}

int
usrvm_stats_print(int fd)
{
	struct usrvm_stats st;
	char buf[4096];
	int n;

	usrvm_stats(&st);
	n = snprintf(buf, sizeof(buf),
	    "usrvm: faults %llu (zero-fill %llu, upper/anon %llu, "
	    "lower/object %llu, copy-on-write %llu, write-protect %llu, "
	    "duplicate %llu, errors %llu)\n"
	    "usrvm: pages filled %llu, zero pages mapped %llu\n"
	    "usrvm: resident %llu pages (peak %llu; duplicates %llu), anons %llu, "
	    "shared anonymous objects %llu, map entries %llu, spaces %llu\n"
	    "usrvm: usrvm_fork %llu, amaps copied %llu, shared pages moved "
	    "%llu; pages lent %llu, copied during a loan %llu\n"
	    "usrvm: budget %llu pages, committed %llu of %llu; active %llu, "
	    "inactive %llu\n"
	    "usrvm: page-ins %llu (%llu reads), page-outs %llu (%llu writes, "
	    "largest %llu pages); swap slots %llu used, %llu bad, of %llu\n"
	    "usrvm: page daemon: %llu passes, %llu deactivated, %llu "
	    "reactivated; evicted clean %llu, zero %llu, dirty %llu, "
	    "file %llu; kept while written %llu; unmovable %llu, swap full "
	    "%llu, over budget %llu\n"
	    "usrvm: files: %llu objects (found %llu, made %llu); read %llu "
	    "pages in %llu reads (largest %llu), %llu of them read ahead; "
	    "written back %llu pages in "
	    "%llu writes (%.3f ms each); errors read %llu, write %llu\n"
	    "usrvm: faults parked for memory %llu, %.3f s in all; I/O errors "
	    "read %llu, write %llu; pages lost %llu\n"
	    "usrvm: application events: remove %llu, unmap %llu, "
	    "remap %llu\n"
	    "usrvm: fault service time p50 <= %llu ns, p99 <= %llu ns, "
	    "max %llu ns\n",
	    (unsigned long long)st.faults, (unsigned long long)st.faults_zero,
	    (unsigned long long)st.faults_upper,
	    (unsigned long long)st.faults_lower,
	    (unsigned long long)st.faults_cow,
	    (unsigned long long)st.faults_wp,
	    (unsigned long long)st.faults_dup,
	    (unsigned long long)st.faults_error,
	    (unsigned long long)st.pages_filled,
	    (unsigned long long)st.pages_zero_mapped,
	    (unsigned long long)st.resident,
	    (unsigned long long)st.resident_peak,
	    (unsigned long long)st.pages_dup,
	    (unsigned long long)st.anons,
	    (unsigned long long)st.aobjs,
	    (unsigned long long)st.map_entries,
	    (unsigned long long)st.spaces,
	    (unsigned long long)st.forks,
	    (unsigned long long)st.amap_copies,
	    (unsigned long long)st.faults_cow_move,
	    (unsigned long long)st.pages_loaned,
	    (unsigned long long)st.loan_copies,
	    (unsigned long long)st.mem_limit,
	    (unsigned long long)st.committed,
	    (unsigned long long)st.commit_limit,
	    (unsigned long long)st.pages_active,
	    (unsigned long long)st.pages_inactive,
	    (unsigned long long)st.pageins,
	    (unsigned long long)st.swap_reads,
	    (unsigned long long)st.pageouts,
	    (unsigned long long)st.swap_writes,
	    (unsigned long long)st.swap_write_max,
	    (unsigned long long)st.swap_slots_used,
	    (unsigned long long)st.swap_slots_bad,
	    (unsigned long long)st.swap_slots,
	    (unsigned long long)st.pd_scans,
	    (unsigned long long)st.pd_deactivations,
	    (unsigned long long)st.pd_reactivations,
	    (unsigned long long)st.evict_clean,
	    (unsigned long long)st.evict_zero,
	    (unsigned long long)st.evict_dirty,
	    (unsigned long long)st.evict_file,
	    (unsigned long long)st.pageout_kept,
	    (unsigned long long)st.pd_unmovable,
	    (unsigned long long)st.pd_swapfull,
	    (unsigned long long)st.pd_grace,
	    (unsigned long long)st.objects,
	    (unsigned long long)st.object_hits,
	    (unsigned long long)st.object_misses,
	    (unsigned long long)st.file_pageins,
	    (unsigned long long)st.file_reads,
	    (unsigned long long)st.file_read_max,
	    (unsigned long long)st.file_ra_pages,
	    (unsigned long long)st.file_pageouts,
	    (unsigned long long)st.file_writes,
	    st.file_writes > 0 ? (double)st.file_write_ns * 1e-6 /
	    (double)st.file_writes : 0.0,
	    (unsigned long long)st.file_errors_read,
	    (unsigned long long)st.file_errors_write,
	    (unsigned long long)st.stalls, (double)st.stall_ns * 1e-9,
	    (unsigned long long)st.io_errors_read,
	    (unsigned long long)st.io_errors_write,
	    (unsigned long long)st.pages_lost,
	    (unsigned long long)st.events_remove,
	    (unsigned long long)st.events_unmap,
	    (unsigned long long)st.events_remap,
	    (unsigned long long)st.fault_lat_p50_ns,
	    (unsigned long long)st.fault_lat_p99_ns,
	    (unsigned long long)st.fault_lat_max_ns);
	if (n > (int)sizeof(buf))
		n = sizeof(buf);
	return write(fd, buf, n) == n ? 0 : -errno;
}
