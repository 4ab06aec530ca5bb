/* Loading a plugin file and checking its descriptor against the ABI
 * (loader.h).
 *
 * dlopen with RTLD_NOW so that a plugin missing a symbol fails here, not
 * at its first call, and RTLD_LOCAL so that plugins cannot see each other. */
#include "loader.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The descriptor size of ABI 1.0: fields a 1.0 plugin has. Later minors
 * append; the core reads appended fields only when desc->size covers them. */
#define PLUGIN_SIZE_V1_0 (offsetof(confab_plugin, auth) + sizeof(const void *))
#define TRANSPORT_OPS_SIZE_V1_0 (offsetof(confab_transport_ops, close) + sizeof(void *))
#define BACKPLANE_OPS_SIZE_V1_0 (offsetof(confab_backplane_ops, history) + sizeof(void *))
#define AUTH_OPS_SIZE_V1_0 (offsetof(confab_auth_ops, authenticate) + sizeof(void *))

const char *loader_kind_name(confab_kind kind)
{
	switch (kind) {
	case CONFAB_KIND_TRANSPORT: return "transport";
	case CONFAB_KIND_BACKPLANE: return "backplane";
	case CONFAB_KIND_AUTH: return "auth";
	}
	return "unknown";
}

static int check_ops(const confab_plugin *d, char *err, size_t err_len)
{
	const void *others[2];
	const char *missing = NULL;
	switch (d->kind) {
	case CONFAB_KIND_TRANSPORT: {
		const confab_transport_ops *o = d->transport;
		others[0] = d->backplane;
		others[1] = d->auth;
		if (!o || o->size < TRANSPORT_OPS_SIZE_V1_0) {
			snprintf(err, err_len, "kind is transport but its transport table is %s",
				 o ? "too short" : "missing");
			return CONFAB_EINVAL;
		}
		missing = !o->send ? "send" : !o->close ? "close" : NULL;
		break;
	}
	case CONFAB_KIND_BACKPLANE: {
		const confab_backplane_ops *o = d->backplane;
		others[0] = d->transport;
		others[1] = d->auth;
		if (!o || o->size < BACKPLANE_OPS_SIZE_V1_0) {
			snprintf(err, err_len, "kind is backplane but its backplane table is %s",
				 o ? "too short" : "missing");
			return CONFAB_EINVAL;
		}
		missing = !o->publish ? "publish" : !o->direct ? "direct" :
			  !o->room_join ? "room_join" : !o->room_leave ? "room_leave" :
			  !o->user_online ? "user_online" : !o->user_offline ? "user_offline" :
			  !o->presence ? "presence" : !o->history ? "history" : NULL;
		break;
	}
	case CONFAB_KIND_AUTH: {
		const confab_auth_ops *o = d->auth;
		others[0] = d->transport;
		others[1] = d->backplane;
		if (!o || o->size < AUTH_OPS_SIZE_V1_0) {
			snprintf(err, err_len, "kind is auth but its auth table is %s",
				 o ? "too short" : "missing");
			return CONFAB_EINVAL;
		}
		missing = !o->authenticate ? "authenticate" : NULL;
		break;
	}
	default:
		snprintf(err, err_len, "unknown plugin kind %d (expected transport, backplane or auth)",
			 (int)d->kind);
		return CONFAB_EINVAL;
	}
	if (missing) {
		snprintf(err, err_len, "mandatory %s slot '%s' is NULL",
			 loader_kind_name(d->kind), missing);
		return CONFAB_EINVAL;
	}
	if (others[0] || others[1]) {
		snprintf(err, err_len, "kind is %s but it also sets another kind's table",
			 loader_kind_name(d->kind));
		return CONFAB_EINVAL;
	}
	return 0;
}

int loader_check(const confab_plugin *d, char *err, size_t err_len)
{
	if (!d) {
		snprintf(err, err_len, "%s() returned NULL", CONFAB_PLUGIN_ENTRY);
		return CONFAB_EINVAL;
	}
	if (d->magic != CONFAB_PLUGIN_MAGIC) {
		snprintf(err, err_len, "bad descriptor magic 0x%08x: not a confab plugin descriptor",
			 (unsigned)d->magic);
		return CONFAB_EINVAL;
	}
	if (d->abi_major != CONFAB_ABI_MAJOR) {
		snprintf(err, err_len, "plugin ABI major %u does not match the broker's %d (ABI %u.%u plugin, broker %d.%d): rebuild the plugin",
			 d->abi_major, CONFAB_ABI_MAJOR, d->abi_major, d->abi_minor,
			 CONFAB_ABI_MAJOR, CONFAB_ABI_MINOR);
		return CONFAB_EINVAL;
	}
	if (d->abi_minor > CONFAB_ABI_MINOR) {
		snprintf(err, err_len, "plugin ABI minor %u.%u is newer than the broker's %d.%d: upgrade confab",
			 d->abi_major, d->abi_minor, CONFAB_ABI_MAJOR, CONFAB_ABI_MINOR);
		return CONFAB_EINVAL;
	}
	if (d->size < PLUGIN_SIZE_V1_0) {
		snprintf(err, err_len, "descriptor size %u is smaller than ABI 1.0's %zu",
			 (unsigned)d->size, (size_t)PLUGIN_SIZE_V1_0);
		return CONFAB_EINVAL;
	}
	if (!d->name || !*d->name || !d->version) {
		snprintf(err, err_len, "descriptor has no name or version");
		return CONFAB_EINVAL;
	}
	if (!d->init || !d->destroy) {
		snprintf(err, err_len, "mandatory lifecycle slot '%s' is NULL",
			 !d->init ? "init" : "destroy");
		return CONFAB_EINVAL;
	}
	return check_ops(d, err, err_len);
}

int loader_open(const char *path, loaded_plugin *out, char *err, size_t err_len)
{
	memset(out, 0, sizeof(*out));
	dlerror();
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		const char *why = dlerror();
		snprintf(err, err_len, "cannot load: %s", why ? why : "unknown error");
		return CONFAB_EINVAL;
	}
	dlerror();
	/* dlsym returns an object pointer; POSIX guarantees it converts to a
	 * function pointer, C does not, hence the copy. */
	void *sym = dlsym(handle, CONFAB_PLUGIN_ENTRY);
	if (!sym) {
		snprintf(err, err_len, "not a confab plugin: no exported symbol '%s'",
			 CONFAB_PLUGIN_ENTRY);
		dlclose(handle);
		return CONFAB_EINVAL;
	}
	confab_plugin_entry_fn entry;
	memcpy(&entry, &sym, sizeof(entry));
	const confab_plugin *desc = entry();
	int rc = loader_check(desc, err, err_len);
	if (rc != 0) {
		dlclose(handle);
		return rc;
	}
	out->path = strdup(path);
	if (!out->path) {
		dlclose(handle);
		snprintf(err, err_len, "out of memory");
		return CONFAB_ENOMEM;
	}
	out->handle = handle;
	out->desc = desc;
	return 0;
}

void loader_close(loaded_plugin *p)
{
	if (p->handle)
		dlclose(p->handle);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

char *loader_resolve_path(const char *plugin_dir, const char *entry)
{
	if (strchr(entry, '/'))
		return strdup(entry);
	size_t n = strlen(plugin_dir) + strlen(entry) + 5;
	char *path = malloc(n);
	if (path)
		snprintf(path, n, "%s/%s.so", plugin_dir, entry);
	return path;
}

char *loader_instance_name(const char *entry)
{
	const char *base = strrchr(entry, '/');
	base = base ? base + 1 : entry;
	size_t n = strlen(base);
	if (n > 3 && strcmp(base + n - 3, ".so") == 0)
		n -= 3;
	return strndup(base, n);
}
