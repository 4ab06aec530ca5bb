/* The control socket: confabctl's requests (status, drain, log-level,
 * reload) over a local Unix socket of mode 0600, served on the broker's
 * loop, one request line and one JSON answer per connection. */
#ifndef CONFAB_CORE_CONTROL_H
#define CONFAB_CORE_CONTROL_H

typedef struct broker broker;
#include "config.h"

/* The longest request line, its newline included; longer is refused. */
#define CONTROL_MAX_REQUEST 256
/* A connection that has not sent its line by then is answered and closed. */
#define CONTROL_DEADLINE_MS 5000
/* Connections served at once; more are closed unanswered. */
#define CONTROL_MAX_CLIENTS 4

/* Checks [broker] control_socket (confabd -t too): short enough for a Unix
 * socket address, in a directory that exists. Reports one line and returns
 * CONFAB_EINVAL, else 0 (also when it is not set). */
int control_check(const config *cfg);

/* Opens the socket when control_socket is set (else does nothing): replaces
 * a stale socket file nothing answers on, refuses to start when a process
 * answers on it. Logs one line and returns non-zero on failure. */
int control_open(broker *b);
/* Closes the listener and every connection, removes the socket file.
 * Safe when nothing was opened; the handles finish closing on the loop. */
void control_close(broker *b);

#endif
