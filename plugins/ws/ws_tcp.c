/* TCP_INFO's count of bytes received, for ws_mask.c. Its own file:
 * glibc's <netinet/tcp.h> (which lws's header includes) has an older
 * struct tcp_info without tcpi_bytes_received (Linux 4.1), and the
 * kernel's <linux/tcp.h> cannot be included with it.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/tcp.h>

/* tcpi_state values (the kernel's net/tcp_states.h; glibc's names are in
 * <netinet/tcp.h>, which cannot be included here). */
enum { ST_TIME_WAIT = 6, ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11 };

/* Declared in ws.h too, which cannot be included here. */
int ws_tcp_received(int fd, uint64_t *bytes, int *fin);

int ws_tcp_received(int fd, uint64_t *bytes, int *fin)
{
	struct tcp_info t;
	socklen_t l = sizeof(t);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &t, &l) != 0 ||
	    l < offsetof(struct tcp_info, tcpi_bytes_received) +
		sizeof(t.tcpi_bytes_received))
		return -1;
	*bytes = t.tcpi_bytes_received;
	/* A FIN in sequence counts as one byte received. */
	*fin = (t.tcpi_state == ST_CLOSE_WAIT || t.tcpi_state == ST_LAST_ACK ||
		t.tcpi_state == ST_CLOSING || t.tcpi_state == ST_TIME_WAIT);
	return 0;
}
