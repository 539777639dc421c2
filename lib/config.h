/*
 * config.h: configuration parsing and checks (config.c).
 */
#ifndef USRVM_CONFIG_H
#define USRVM_CONFIG_H

#include <stddef.h>

#include "usrvm.h"

void config_defaults(struct usrvm_config *cfg);
int config_check(const struct usrvm_config *cfg);	/* 0 or EINVAL */

#endif /* USRVM_CONFIG_H */
