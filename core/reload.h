/* Reloading broker.ini while serving (SIGHUP, `confabctl reload`): all of
 * it or none, without touching a connection. docs/operations.md#reload is
 * the operator's side. */
#ifndef CONFAB_CORE_RELOAD_H
#define CONFAB_CORE_RELOAD_H

#include "broker.h"

/* Reads the broker's file again and applies it: 0, or CONFAB_EINVAL when
 * the file or a plugin refused it (the error line is logged, the node
 * keeps the configuration it runs), CONFAB_ESTATE when the node is not
 * serving (starting, draining, stopping), CONFAB_ENOMEM. `why` names the
 * cause in the log. */
int broker_reload(broker *b, const char *why);

#endif
