/* The host tables: what the core gives each plugin instance. One table
 * per kind; every slot takes the instance's ctx (or a session) first. */
#ifndef CONFAB_CORE_HOST_H
#define CONFAB_CORE_HOST_H

#include <confab/plugin.h>

const confab_host *host_table(confab_kind kind);

#endif
