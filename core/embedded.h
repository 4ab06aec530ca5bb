/* The built-in in-process backplane: rooms, direct messages, presence and
 * history in memory, for a single node. It is a plugin like any other
 * backplane, only linked in: the core loads it through the same descriptor
 * and calls it through the same table. */
#ifndef CONFAB_CORE_EMBEDDED_H
#define CONFAB_CORE_EMBEDDED_H

#include <confab/plugin.h>

const confab_plugin *embedded_backplane(void);

#endif
