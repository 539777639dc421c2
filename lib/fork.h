/*
 * fork.h: what fork(2) does to the runtime (fork.c).
 */
#ifndef USRVM_FORK_H
#define USRVM_FORK_H

/*
 * Register the fork handlers (once per process; usrvm_init).  In the
 * child every managed page is put back in place, and the child has no
 * runtime (usrvm_is_running() is false there).  0 or an errno.
 */
int fork_sys_init(void);

#endif /* USRVM_FORK_H */
