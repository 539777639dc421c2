/*
 * stats.h: the runtime's counters (behind usrvm_stats()).
 *
 * Plain relaxed atomics: a counter update costs a few nanoseconds next to
 * a userfaultfd round trip of microseconds.
 */
#ifndef USRVM_STATS_H
#define USRVM_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "usrvm.h"

struct usrvm_counters {
	_Atomic uint64_t faults;
	_Atomic uint64_t faults_zero;
	_Atomic uint64_t faults_upper;
	_Atomic uint64_t faults_lower;
	_Atomic uint64_t faults_cow;
	_Atomic uint64_t faults_cow_move;
	_Atomic uint64_t faults_wp;
	_Atomic uint64_t faults_dup;
	_Atomic uint64_t faults_error;
	_Atomic uint64_t pages_zero_mapped;
	_Atomic uint64_t pages_filled;
	_Atomic int64_t resident;
	_Atomic int64_t resident_peak;
	_Atomic int64_t anons;
	_Atomic int64_t aobjs;
	_Atomic int64_t pages_loaned;
	_Atomic int64_t pages_dup;
	_Atomic uint64_t loan_copies;
	_Atomic int64_t map_entries;
	_Atomic int64_t spaces;
	_Atomic uint64_t forks;
	_Atomic uint64_t amap_copies;
	_Atomic int64_t committed;	/* pages */
	_Atomic uint64_t pageins;
	_Atomic uint64_t pageouts;
	_Atomic uint64_t swap_writes;	/* write requests (clusters) */
	_Atomic uint64_t swap_write_max;	/* largest cluster, pages */
	_Atomic uint64_t swap_reads;
	_Atomic uint64_t pd_scans;
	_Atomic uint64_t pd_deactivations;
	_Atomic uint64_t pd_reactivations;
	_Atomic uint64_t pd_evict_clean;
	_Atomic uint64_t pd_evict_zero;
	_Atomic uint64_t pd_evict_dirty;
	_Atomic uint64_t pd_pageout_kept;
	_Atomic uint64_t pd_unmovable;
	_Atomic uint64_t pd_swapfull;
	_Atomic uint64_t pd_grace;	/* pages granted beyond the budget */
	_Atomic uint64_t pd_evict_file;
	_Atomic uint64_t stalls;
	_Atomic uint64_t stall_ns;
	_Atomic uint64_t io_errors_read;
	_Atomic uint64_t io_errors_write;
	_Atomic uint64_t pages_lost;
	_Atomic int64_t objects;
	_Atomic uint64_t obj_hits;
	_Atomic uint64_t obj_misses;
	_Atomic uint64_t file_pageins;
	_Atomic uint64_t file_reads;
	_Atomic uint64_t file_read_max;
	_Atomic uint64_t file_ra_pages;
	_Atomic uint64_t file_pageouts;
	_Atomic uint64_t file_writes;
	_Atomic uint64_t file_write_ns;
	_Atomic uint64_t file_errors_read;
	_Atomic uint64_t file_errors_write;
	_Atomic uint64_t events_remove;
	_Atomic uint64_t events_unmap;
	_Atomic uint64_t events_remap;
	_Atomic uint64_t fault_lat_ns[USRVM_LAT_BUCKETS];
	_Atomic uint64_t fault_lat_max_ns;
};

extern struct usrvm_counters usrvm_cnt;

#define CNT_ADD(field, n) \
	atomic_fetch_add_explicit(&usrvm_cnt.field, (n), memory_order_relaxed)
#define CNT_INC(field)	CNT_ADD(field, 1)

/* Record one fault's service time. */
void stats_fault_latency(uint64_t ns);
/* Account n pages becoming resident (n < 0: leaving), tracking the peak. */
void stats_resident_add(long n);
/* Raise a maximum. */
void stats_max(_Atomic uint64_t *m, uint64_t v);
/* Zero every counter (usrvm_init). */
void stats_reset(void);

#endif /* USRVM_STATS_H */
