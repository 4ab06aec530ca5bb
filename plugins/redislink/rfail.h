/* The one way a Redis link's or backplane's fail function formats its
 * reason: printf-style, truncated to the array it goes into.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RFAIL_H
#define CONFAB_RFAIL_H

#include <stdarg.h>
#include <stdio.h>

/* In a function whose last parameters are `fmt, ...`: formats them into
 * `reason`, a char array (not a pointer), cut to fit it. */
#define RFAIL_FORMAT(reason, fmt) \
	do { \
		va_list rfail_ap_; \
		va_start(rfail_ap_, fmt); \
		vsnprintf((reason), sizeof(reason), (fmt), rfail_ap_); \
		va_end(rfail_ap_); \
	} while (0)

#endif /* CONFAB_RFAIL_H */
