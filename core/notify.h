/* Tells systemd (a Type=notify unit) how the node is doing through
 * sd_notify: ready once it serves, stopping when it drains, and watchdog
 * pings sent from the loop. A no-op without libsystemd or NOTIFY_SOCKET. */
#ifndef CONFAB_CORE_NOTIFY_H
#define CONFAB_CORE_NOTIFY_H

#include <uv.h>

/* The node serves (every plugin started): sends READY=1 with `status` as
 * STATUS=, and, when systemd asked for a watchdog (WatchdogSec: see
 * sd_watchdog_enabled(3)), starts a timer on `loop` that sends WATCHDOG=1
 * every half interval, so that a stuck loop stops the pings. A timer that
 * cannot start is logged here and the node serves on: systemd then restarts
 * it when the watchdog expires, which is what the operator asked for. */
void notify_ready(uv_loop_t *loop, const char *status);

/* The node begins to drain or stop: STOPPING=1 with `status` as STATUS=.
 * The watchdog keeps pinging until notify_close. */
void notify_stopping(const char *status);

/* Stops and closes the watchdog's timer, so that the loop can end; safe
 * when notify_ready was never called, and more than once. */
void notify_close(void);

#endif
