/* confabctl: sends one request to a running confabd over its control
 * socket ([broker] control_socket) and prints the answer. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <ini.h>
#include <jansson.h>

#include "confab-build.h"
#include "confab-paths.h"  /* CONFAB_SYSCONFDIR: made by make (Makefile.am) */

#define DEFAULT_CONFIG CONFAB_SYSCONFDIR "/confab/broker.ini"
/* The node answers at once; its own deadline for a request is 5 s. */
#define ANSWER_TIMEOUT_MS 10000
#define MAX_ANSWER 65536

static void usage(FILE *out)
{
	fprintf(out,
		"usage: confabctl [-s SOCKET | -c FILE] [--json] COMMAND\n"
		"       confabctl -V | -h\n"
		"\n"
		"commands:\n"
		"  status            version, uptime, sessions, rooms, backplane state\n"
		"  drain             take the node out of service as SIGTERM does\n"
		"  log-level LEVEL   error, warn, info or debug, until the node stops or reloads\n"
		"  reload            read broker.ini again, as SIGHUP does (all of it or none)\n"
		"\n"
		"  -s SOCKET  the node's control socket\n"
		"  -c FILE    read [broker] control_socket from FILE (default %s)\n"
		"  --json     print the node's JSON answer as it is\n"
		"  -V         print the version and exit\n"
		"  -h         print this help and exit\n",
		DEFAULT_CONFIG);
}

/* inih handler: keeps [broker] control_socket. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	char **socket_path = user;
	if (strcmp(section, "broker") == 0 && strcmp(name, "control_socket") == 0) {
		free(*socket_path);
		*socket_path = strdup(value);
		if (!*socket_path)
			return 0;
	}
	return 1;
}

/* The request line for argv's command, or NULL after saying why not. */
static char *request_line(int argc, char **argv)
{
	const char *cmd = argv[0];
	char *line = NULL;
	if (argc == 1 && (strcmp(cmd, "status") == 0 || strcmp(cmd, "drain") == 0 ||
			  strcmp(cmd, "reload") == 0)) {
		if (asprintf(&line, "%s\n", cmd) < 0)
			line = NULL;
	} else if (argc == 2 && strcmp(cmd, "log-level") == 0) {
		if (strchr(argv[1], '\n') || asprintf(&line, "log-level %s\n", argv[1]) < 0)
			line = NULL;
	} else {
		fprintf(stderr, "confabctl: unknown command or wrong arguments: %s\n", cmd);
		return NULL;
	}
	if (!line)
		fprintf(stderr, "confabctl: cannot build the request\n");
	return line;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends `request` to the socket at `path` and reads the answer up to the
 * node's close into `out` (NUL-terminated). 0, or 1 after saying why. */
static int exchange(const char *path, const char *request, char *out, size_t cap)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "confabctl: %s: path too long for a Unix socket\n", path);
		return 1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "confabctl: %s: %s%s\n", path, strerror(errno),
			errno == ENOENT || errno == ECONNREFUSED ? " (is confabd running?)" : "");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	size_t len = strlen(request);
	for (size_t sent = 0; sent < len;) {
		ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "confabctl: %s: sending: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
		if (n > 0)
			sent += (size_t)n;
	}
	size_t got = 0;
	int64_t deadline = now_ms() + ANSWER_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "confabctl: %s: no answer within %d s\n", path,
				ANSWER_TIMEOUT_MS / 1000);
			close(fd);
			return 1;
		}
		if (got + 1 >= cap) {
			fprintf(stderr, "confabctl: %s: answer longer than %zu bytes\n", path, cap - 1);
			close(fd);
			return 1;
		}
		ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "confabctl: %s: reading: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	out[got] = '\0';
	return 0;
}

/* Prints the answer's fields as "key: value" lines; 0 when it says ok. */
static int print_answer(const char *text, bool raw)
{
	json_error_t err;
	json_t *a = json_loads(text, 0, &err);
	if (!json_is_object(a)) {
		fprintf(stderr, "confabctl: the node's answer is not a JSON object: %.200s\n", text);
		json_decref(a);
		return 1;
	}
	bool ok = json_is_true(json_object_get(a, "ok"));
	if (raw) {
		fputs(text, stdout);
	} else if (!ok) {
		json_t *e = json_object_get(a, "error");
		fprintf(stderr, "confabctl: %s\n", json_is_string(e) ? json_string_value(e) : text);
	} else {
		const char *key;
		json_t *v;
		json_object_foreach(a, key, v) {
			if (strcmp(key, "ok") == 0)
				continue;
			if (json_is_string(v)) {
				printf("%s: %s\n", key, json_string_value(v));
			} else {
				char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
				printf("%s: %s\n", key, s ? s : "?");
				free(s);
			}
		}
	}
	json_decref(a);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *socket_arg = NULL;
	const char *config_path = NULL;
	bool raw = false;
	static const struct option longs[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	/* "+": options before the command only (log-level takes an argument) */
	while ((opt = getopt_long(argc, argv, "+s:c:Vh", longs, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_arg = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'j':
			raw = true;
			break;
		case 'V':
			printf("confabctl %s\n", PACKAGE_VERSION);
			return 0;
		default:             /* -h, or a bad option */
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (socket_arg && config_path) {
		fprintf(stderr, "confabctl: -s and -c: give one\n");
		return 2;
	}
	char *request = request_line(argc - optind, argv + optind);
	if (!request)
		return 2;

	char *socket_path = socket_arg ? strdup(socket_arg) : NULL;
	if (!socket_arg) {
		if (!config_path)
			config_path = DEFAULT_CONFIG;
		int rc = ini_parse(config_path, on_ini, &socket_path);
		if (rc != 0) {
			if (rc < 0)
				fprintf(stderr, "confabctl: cannot read %s\n", config_path);
			else
				fprintf(stderr, "confabctl: %s:%d: cannot parse this line\n", config_path, rc);
			free(socket_path);
			free(request);
			return 1;
		}
		if (!socket_path || !*socket_path) {
			fprintf(stderr, "confabctl: %s sets no [broker] control_socket: the node has no control socket\n",
				config_path);
			free(socket_path);
			free(request);
			return 1;
		}
	}
	char *answer = socket_path ? malloc(MAX_ANSWER) : NULL;
	int rc = 1;
	if (!answer)
		fprintf(stderr, "confabctl: out of memory\n");
	else if (exchange(socket_path, request, answer, MAX_ANSWER) == 0)
		rc = print_answer(answer, raw);
	free(answer);
	free(socket_path);
	free(request);
	return rc;
}
