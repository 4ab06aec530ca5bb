/* A redis-server child process for the unit tests (redis_child.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "redis_child.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ATTEMPTS 5
#define MAX_ARGS 64

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* True when 127.0.0.1:port can be bound now (no SO_REUSEADDR: anyone
 * holding it, listening or not, makes this fail). */
static bool port_free(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* A free port below the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range). */
static int pick_port(int not_this)
{
	int lo = 32768, hi;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f != NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	int first = lo > 21000 ? 20000 : 1024;
	for (int i = 0; i < 200 && lo > first; i++) {
		int port = first + rand() % (lo - first);
		if (port != not_this && port_free(port))
			return port;
	}
	return -1;
}

int redis_child_unused_port(void)
{
	return pick_port(-1);
}

static bool accepts(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool running(pid_t pid)
{
	int status;
	return waitpid(pid, &status, WNOHANG) == 0;
}

static pid_t spawn(const char *program, const char *const *args, bool tls, int port, int plain)
{
	char portbuf[16], plainbuf[16];
	const char *argv[MAX_ARGS];
	int argc = 0;
	pid_t pid;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	snprintf(plainbuf, sizeof(plainbuf), "%d", plain);
	argv[argc++] = program;
	argv[argc++] = "--port";
	argv[argc++] = tls ? plainbuf : portbuf;
	if (tls) {
		argv[argc++] = "--tls-port";
		argv[argc++] = portbuf;
	}
	for (; *args != NULL && argc < MAX_ARGS - 1; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	if ((pid = fork()) != 0)
		return pid;
	if (freopen("/dev/null", "w", stdout) == NULL)
		_exit(127);
	execv(program, (char *const *)argv);
	_exit(127);
}

pid_t redis_child_start(const char *program, const char *const *args, bool tls, int *port,
			int *plain)
{
	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		int p = pick_port(-1), q = plain != NULL ? pick_port(p) : 0;
		pid_t pid;

		if (p < 0 || q < 0 || (pid = spawn(program, args, tls, p, q)) < 0)
			return -1;
		for (int i = 0; i < 200 && running(pid); i++) {
			/* A redis-server whose port was taken exits at once, before
			 * it listens anywhere: answering and still running a moment
			 * later means it is ours that answers. */
			if (accepts(p)) {
				sleep_ms(50);
				if (!running(pid))
					break;
				*port = p;
				if (plain != NULL)
					*plain = q;
				return pid;
			}
			sleep_ms(25);
		}
		if (running(pid)) {  /* never answered: not a port problem */
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -1;
		}
	}
	return -1;
}

void redis_child_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
