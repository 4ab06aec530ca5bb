/* confabd: the command line. Everything else happens in broker.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "confab-build.h"
#include "confab-paths.h"  /* CONFAB_SYSCONFDIR: made by make (Makefile.am) */
#include "log.h"

#define DEFAULT_CONFIG CONFAB_SYSCONFDIR "/confab/broker.ini"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: confabd [-t] [-c FILE]\n"
		"       confabd -V | -h\n"
		"\n"
		"  -c FILE  read the configuration from FILE (default %s)\n"
		"  -t       check the configuration: load and initialise every plugin\n"
		"           without opening ports, then exit 0 (valid) or 1\n"
		"  -V       print the version and exit\n"
		"  -h       print this help and exit\n",
		DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	const char *config_path = DEFAULT_CONFIG;
	bool check_only = false;
	int opt;
	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("confabd %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, CONFAB_ABI_MAJOR,
			       CONFAB_ABI_MINOR);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "confabd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	broker b;
	int rc = broker_init(&b, config_path, check_only);
	if (rc == 0 && check_only) {
		printf("confabd: %s: configuration OK (%zu plugins)\n", config_path, b.n_chain);
	} else if (rc == 0) {
		rc = broker_run(&b);
	}
	broker_destroy(&b);
	return rc == 0 ? 0 : 1;
}
