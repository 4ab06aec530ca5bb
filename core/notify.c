/* sd_notify for a Type=notify unit: READY=1, STOPPING=1, STATUS= and the
 * watchdog's WATCHDOG=1 pings, from the broker's loop (notify.h). */
#include "notify.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "confab-build.h"
#include "log.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

/* One watchdog per process: NOTIFY_SOCKET and WATCHDOG_USEC are the
 * process's environment, not a broker's. */
static uv_timer_t watchdog;
static bool watchdog_on;

/* Logs a failed send once: a notify socket that went away is not worth a
 * line per ping. sd_notify answers 0 when there is no NOTIFY_SOCKET. */
static void send_state(const char *state)
{
	static bool reported;
	int rc = sd_notify(0, state);
	if (rc < 0 && !reported) {
		reported = true;
		log_line(CONFAB_LOG_WARN, "core", "sd_notify: cannot tell systemd: %s", strerror(-rc));
	}
}

static void send_with_status(const char *state, const char *status)
{
	char line[512];
	snprintf(line, sizeof line, "%s\nSTATUS=%s", state, status);
	send_state(line);
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	send_state("WATCHDOG=1");
}

void notify_ready(uv_loop_t *loop, const char *status)
{
	send_with_status("READY=1", status);
	uint64_t usec = 0;
	if (watchdog_on || sd_watchdog_enabled(0, &usec) <= 0)
		return;
	/* half the interval, as sd_watchdog_enabled(3) advises: one late
	 * tick does not get a healthy node killed */
	uint64_t every_ms = usec / 2000;
	if (every_ms == 0)
		every_ms = 1;
	int rc = uv_timer_init(loop, &watchdog);
	if (rc == 0) {
		watchdog_on = true;
		rc = uv_timer_start(&watchdog, on_watchdog, every_ms, every_ms);
	}
	if (rc != 0) {
		log_line(CONFAB_LOG_ERROR, "core", "cannot start the systemd watchdog's timer: %s",
			 uv_strerror(rc));
		return;
	}
	log_line(CONFAB_LOG_INFO, "core", "systemd watchdog: a ping every %" PRIu64 " ms",
		 every_ms);
}

void notify_stopping(const char *status)
{
	send_with_status("STOPPING=1", status);
}

void notify_close(void)
{
	if (!watchdog_on)
		return;
	watchdog_on = false;
	uv_timer_stop(&watchdog);
	uv_close((uv_handle_t *)&watchdog, NULL);
}

#else /* !HAVE_SYSTEMD: built --without-systemd, or libsystemd not found */

void notify_ready(uv_loop_t *loop, const char *status)
{
	(void)loop;
	(void)status;
}

void notify_stopping(const char *status)
{
	(void)status;
}

void notify_close(void)
{
}

#endif
