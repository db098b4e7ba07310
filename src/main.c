/* qkd - the one executable of qkdnet (DESIGN.md section 2). */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"sim", cmd_sim, "run a whole simulated QKD link and report the key it distils"},
	{"entropy", cmd_entropy, "compute an entropy estimate from counts"},
	{"sweep", cmd_sweep, "run the link over a range of distances and plot the key rate"},
	{"bench", cmd_bench, "measure the speed of each pipeline stage on this machine"},
	{"keys", cmd_keys, "list a link's key store, or export one block's bits"},
	{"node", cmd_node, "run a node: its links distil key into their stores (daemon)"},
	{"status", cmd_status, "show the links of a running node"},
	{"eve", cmd_eve, "eavesdrop on the fiber between two nodes (intercept-resend, beamsplit)"},
	{"kme", cmd_kme, "ask an ETSI GS QKD 014 key manager for status and keys (client)"},
	{"netmap", cmd_netmap, "draw the network a node knows, from its link-state database (graphviz)"},
	{"netsim", cmd_netsim, "simulate the relay network's routing and key relay at scale"},
	{"vpn", cmd_vpn, "an IPsec gateway keyed with QKD (IKEv2 + RFC 8784/9867, ESP in UDP)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: qkd <command> [options]   (qkd <command> --help for its options)\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nSee man -l docs/qkd.1 and docs/ for the model and the formats.\n");
}

int main(int argc, char **argv)
{
	/* The pipeline allocates and frees multi-megabyte buffers per chunk and
	 * per frame; served by mmap, each would be faulted in afresh. Keep them
	 * in the heap so freed memory is reused (docs/performance.md). */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);	/* glibc's largest */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	cli_errorf(argv[1], "unknown command (try 'qkd --help')");
	return CLI_EXIT_USAGE;
}
