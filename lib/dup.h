/*
 * dup.h: the write-protected duplicates the kernel leaves at addresses it
 * will not move a page out of (see dup.c), counted resident.
 */
#ifndef USRVM_DUP_H
#define USRVM_DUP_H

#include <stddef.h>
#include <stdint.h>

/* Room for `max` duplicates at once (paging only).  0 or ENOMEM. */
int dup_sys_init(size_t max);
void dup_sys_fini(void);
void dup_fork_child(void);

/* A duplicate was left at va (anon_stage_out). */
void dup_add(uintptr_t va);
/* An install at va found the page there (EEXIST) and took it over. */
void dup_take(uintptr_t va);
/* [va, va + len) lost its pages, or is not managed any more. */
void dup_forget(uintptr_t va, size_t len);

#endif /* USRVM_DUP_H */
