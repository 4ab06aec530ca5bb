/* A redis-server child process for the unit tests of plugins/redislink:
 * started on loopback ports it picks, waited for, stopped by PID.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_TEST_REDIS_CHILD_H
#define CONFAB_TEST_REDIS_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts `program` (a redis-server) with `args` (NULL-terminated; they
 * must not name ports) on a loopback port it picks: `--port P`, or with
 * `tls`, `--tls-port P` and `--port Q` (Q a second port when `plain` is
 * not NULL, else 0: no plain port). redis-server cannot bind port 0 and
 * say which port it got, so a port is picked first, below the ephemeral
 * range (where no connect's source port lands), and a start that fails
 * because another process took it meanwhile is tried again on other
 * ports. Waits until P accepts connections while the child runs. Returns
 * the child's PID (P in *port, Q in *plain), or -1. */
pid_t redis_child_start(const char *program, const char *const *args, bool tls, int *port,
			int *plain);

/* A loopback port below the ephemeral range that nothing holds now: a
 * connect to it is refused (and cannot meet itself), for tests of links
 * to a server that is not there. -1 if none was found. */
int redis_child_unused_port(void);

/* SIGTERM, then wait for it. Nothing for pid <= 0. */
void redis_child_stop(pid_t pid);

#endif
