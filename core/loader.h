/* Loading plugin files: dlopen, find the one exported entry point, and
 * check the descriptor against the ABI this core speaks before anything in
 * the plugin runs. */
#ifndef CONFAB_CORE_LOADER_H
#define CONFAB_CORE_LOADER_H

#include <stddef.h>
#include <confab/plugin.h>

typedef struct loaded_plugin {
	char *path;                  /* the file that was opened */
	void *handle;                /* dlopen handle */
	const confab_plugin *desc;   /* checked descriptor */
} loaded_plugin;

/* Opens `path` and checks its descriptor. On failure returns a negative
 * code and writes one sentence saying why into err (the caller names the
 * file and config key around it); nothing stays loaded. */
int loader_open(const char *path, loaded_plugin *out, char *err, size_t err_len);
void loader_close(loaded_plugin *p);

/* Checks a descriptor as loader_open does (exposed for the embedded
 * backplane, which has no file, and for tests). */
int loader_check(const confab_plugin *desc, char *err, size_t err_len);

const char *loader_kind_name(confab_kind kind);

/* Resolves a chain entry to a file path: a name with '/' is a path as is;
 * otherwise plugin_dir/NAME.so. And the instance (section) name: the file's
 * base name without ".so". Both malloc'd; NULL when out of memory. */
char *loader_resolve_path(const char *plugin_dir, const char *entry);
char *loader_instance_name(const char *entry);

#endif
