/* confab plugin SDK — rate-limiting log lines that clients can trigger.
 *
 * A line that a client can cause (a refused handshake, a bad frame, a
 * failed login) must not let that client fill the disk or burn the CPU
 * writing the log: at 800 refusals a second, one line each is 800 lines a
 * second. Each such line gets a confab_ratelimit; the caller logs only when
 * confab_ratelimit_allow() says so, and says how many lines it skipped:
 *
 *     static confab_ratelimit refused_log = CONFAB_RATELIMIT_INIT(1000);
 *     uint64_t skipped;
 *     if (confab_ratelimit_allow(&refused_log, now_ms, &skipped))
 *             log(..., "refused %s (%llu more since the last line)", ...);
 *
 * It is not part of the ABI: static inline code compiled into the plugin
 * or the core, calling nothing in the broker. Loop thread only, like
 * everything else in the SDK.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RATELIMIT_H
#define CONFAB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct confab_ratelimit {
	uint64_t interval_ms;   /* at most one line per interval */
	uint64_t last_ms;       /* when the last line was let through */
	uint64_t suppressed;    /* lines refused since then */
	bool started;
} confab_ratelimit;

/* At most one line every `interval_ms` milliseconds. */
#define CONFAB_RATELIMIT_INIT(interval_ms) { (interval_ms), 0, 0, false }

/* True when a line may be written now (`now_ms` from any monotonic or
 * wall clock, the same one at every call). Then *suppressed (may be NULL)
 * is how many lines were refused since the last one let through, so the
 * line can say "(N more)". False counts the line as suppressed. */
static inline bool confab_ratelimit_allow(confab_ratelimit *rl, uint64_t now_ms,
					  uint64_t *suppressed)
{
	if (rl->started && now_ms - rl->last_ms < rl->interval_ms) {
		rl->suppressed++;
		return false;
	}
	if (suppressed)
		*suppressed = rl->suppressed;
	rl->started = true;
	rl->last_ms = now_ms;
	rl->suppressed = 0;
	return true;
}

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_RATELIMIT_H */
