/* qkd netsim - the relay network's routing and key relay over simulated
 * links at scale (docs/netsim.md): reads a topology file or generates one,
 * runs lib/relay's simulator (qkd/netsim.h) and reports its figures as a
 * table or JSON, with the reroutes in order under --trace. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "netsim_report.h"
#include "netsim_routes.h"
#include "relay_routes_json.h"
#include "progress.h"

#include "qkd/error.h"
#include "qkd/netsim.h"
#include "qkd/topology.h"

enum {
	O_TOPOLOGY = 256, O_GENERATE, O_WRITE, O_DURATION, O_REQUESTS, O_PATHS, O_SEED, O_CUT,
	O_ALARM, O_WARMUP, O_TRACE, O_ROUTES, O_JSON, O_NO_RUN, O_HELP,
};

static const struct option long_opts[] = {
	{"topology", required_argument, NULL, O_TOPOLOGY},
	{"generate", required_argument, NULL, O_GENERATE},
	{"write-topology", required_argument, NULL, O_WRITE},
	{"duration", required_argument, NULL, O_DURATION},
	{"requests", required_argument, NULL, O_REQUESTS},
	{"paths", required_argument, NULL, O_PATHS},
	{"seed", required_argument, NULL, O_SEED},
	{"cut", required_argument, NULL, O_CUT},
	{"alarm", required_argument, NULL, O_ALARM},
	{"warmup", required_argument, NULL, O_WARMUP},
	{"trace", no_argument, NULL, O_TRACE},
	{"routes", required_argument, NULL, O_ROUTES},
	{"json", no_argument, NULL, O_JSON},
	{"no-run", no_argument, NULL, O_NO_RUN},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

struct netsim_options {
	struct qkd_netsim_config c;
	char **argv;
	int argc;
	const char *topology, *write;
	bool generate, json, no_run;
	enum qkd_topo_shape shape;
	uint64_t nodes;
	size_t n_faults;
	const char *fault_spec[QKD_NETSIM_FAULTS_MAX];
	bool fault_alarm[QKD_NETSIM_FAULTS_MAX];
	size_t n_probes;
	const char *probe_spec[NETSIM_PROBES_MAX];
	struct netsim_probe probes[NETSIM_PROBES_MAX];	/* in time order once resolved */
};

static void help(void)
{
	printf("usage: qkd netsim (--topology FILE | --generate ring|grid|random N) [options]\n\n"
	       "Run one relay agent per node (the code qkd node runs) over simulated links\n"
	       "with a simulated clock, and report convergence after faults, relayed key\n"
	       "throughput and the link key it spends (docs/netsim.md).\n\n"
	       "  --topology FILE         the network (format: docs/netsim.md)\n"
	       "  --generate KIND N       a ring, grid or random network of N nodes (3..%d)\n"
	       "  --write-topology FILE   save the network in the file format\n"
	       "  --no-run                stop after reading, generating or writing it\n"
	       "  --duration S            simulated seconds (default 60)\n"
	       "  --requests R            end-to-end keys asked per second, whole network,\n"
	       "                          random SAE pairs, 256 bits each (default 10)\n"
	       "  --warmup S              first request at S (default 2)\n"
	       "  --paths 1|2             shares per key over node-disjoint paths (default 1)\n"
	       "  --cut A-B@T             the link A-B goes down at both ends at time T\n"
	       "  --alarm A-B@T           the link A-B reports its QBER alarm from time T\n"
	       "                          (each at most %d times in all)\n"
	       "  --seed N                requests, keys and pads (default 1)\n"
	       "  --trace                 print every next-hop change in time order\n"
	       "  --routes NODE@T         print NODE's route table at time T, as\n"
	       "                          qkd status shows a node's (at most %d times)\n"
	       "  --json                  one JSON object on stdout\n",
	       QKD_TOPO_GEN_MAX, QKD_NETSIM_FAULTS_MAX, NETSIM_PROBES_MAX);
}

static int parse_generate(struct netsim_options *o, const char *arg)
{
	char kind[16];
	const char *colon = strchr(arg, ':'), *count = colon ? colon + 1 : NULL;
	size_t k = colon ? (size_t)(colon - arg) : strlen(arg);

	if (k >= sizeof kind)
		k = sizeof kind - 1;
	memcpy(kind, arg, k);
	kind[k] = '\0';
	if (qkd_topology_shape_parse(kind, &o->shape) != QKD_OK) {
		cli_errorf("--generate", "unknown kind '%s' (ring, grid or random)", kind);
		return -1;
	}
	/* "--generate random 1000": the count is the next argument. */
	if (count == NULL && optind < o->argc && o->argv[optind][0] != '-')
		count = o->argv[optind++];
	if (count == NULL) {
		cli_error("--generate", "expected KIND N, e.g. 'random 100'");
		return -1;
	}
	o->generate = true;
	return cli_opt_u64("--generate", count, 3, QKD_TOPO_GEN_MAX, &o->nodes);
}

static int parse_one(int c, const char *arg, void *ctx)
{
	struct netsim_options *o = ctx;
	uint64_t v;

	switch (c) {
	case O_TOPOLOGY: o->topology = arg; return 0;
	case O_GENERATE: return parse_generate(o, arg);
	case O_WRITE: o->write = arg; return 0;
	case O_DURATION: return cli_opt_real("--duration", arg, 0, true, 1e6, &o->c.duration_s);
	case O_REQUESTS: return cli_opt_real("--requests", arg, 0, false, 1e6, &o->c.requests_per_s);
	case O_WARMUP: return cli_opt_real("--warmup", arg, 0, false, 1e6, &o->c.warmup_s);
	case O_PATHS:
		if (cli_opt_u64("--paths", arg, 1, 2, &v) != 0)
			return -1;
		o->c.paths = (unsigned)v;
		return 0;
	case O_SEED: return cli_opt_u64("--seed", arg, 0, UINT64_MAX, &o->c.seed);
	case O_CUT:
	case O_ALARM:
		if (o->n_faults == QKD_NETSIM_FAULTS_MAX) {
			cli_errorf(c == O_CUT ? "--cut" : "--alarm", "more than %d faults",
				   QKD_NETSIM_FAULTS_MAX);
			return -1;
		}
		o->fault_alarm[o->n_faults] = c == O_ALARM;
		o->fault_spec[o->n_faults++] = arg;
		return 0;
	case O_TRACE: o->c.trace = true; return 0;
	case O_ROUTES:
		if (o->n_probes == NETSIM_PROBES_MAX) {
			cli_errorf("--routes", "given more than %d times", NETSIM_PROBES_MAX);
			return -1;
		}
		o->probe_spec[o->n_probes++] = arg;
		return 0;
	case O_JSON: o->json = true; return 0;
	case O_NO_RUN: o->no_run = true; return 0;
	default: return -1;
	}
}

/* The network: loaded or generated; faults resolved against it. */
static int netsim_topology(struct netsim_options *o, struct qkd_topology **t)
{
	char what[4096];
	size_t line = 0;
	const char *why = NULL;
	int rc;

	if (o->generate) {
		rc = qkd_topology_generate(o->shape, (size_t)o->nodes, o->c.seed, t);
		if (rc != QKD_OK)
			cli_errorf("--generate", "%s", qkd_strerror(rc));
		return rc == QKD_OK ? 0 : -1;
	}
	rc = qkd_topology_load(o->topology, t, &line, &why);
	if (rc == QKD_ERR_IO) {
		snprintf(what, sizeof what, "topology %s", o->topology);
		cli_error(what, strerror(errno));
	} else if (rc != QKD_OK) {
		/* topo.md: "topology FILE:LINE: why" */
		snprintf(what, sizeof what, "topology %s:%zu", o->topology, line);
		cli_error(what, why ? why : qkd_strerror(rc));
	}
	return rc == QKD_OK ? 0 : -1;
}

static int netsim_faults(struct netsim_options *o, const struct qkd_topology *t)
{
	const char *why;

	o->c.topo = t;
	for (size_t f = 0; f < o->n_faults; f++) {
		if (qkd_netsim_fault_parse(t, o->fault_spec[f], o->fault_alarm[f], &o->c.faults[f],
					   &why) != QKD_OK) {
			cli_errorf(o->fault_alarm[f] ? "--alarm" : "--cut", "%s: '%s'", why,
				   o->fault_spec[f]);
			return -1;
		}
	}
	o->c.n_faults = o->n_faults;
	/* The probes, stably in time order: the run stops at each in turn. */
	for (size_t i = 0; i < o->n_probes; i++) {
		struct netsim_probe p;
		size_t k = i;

		if (netsim_probe_parse(t, o->probe_spec[i], &p) != 0)
			return -1;
		if (p.t > o->c.duration_s) {
			cli_errorf("--routes", "%s: after the end of the run (--duration %g)",
				   o->probe_spec[i], o->c.duration_s);
			return -1;
		}
		for (; k > 0 && o->probes[k - 1].t > p.t; k--)
			o->probes[k] = o->probes[k - 1];
		o->probes[k] = p;
	}
	return 0;
}

/* Run the simulation to its end, stopping at each probe to copy the
 * node's routes. */
static int netsim_execute(struct netsim_options *o, struct qkd_netsim_result *r)
{
	struct qkd_netsim *s = NULL;
	const char *why = NULL;
	int rc = qkd_netsim_new(&o->c, &s, &why);

	for (size_t i = 0; rc == QKD_OK && i < o->n_probes; i++) {
		rc = qkd_netsim_run_until(s, o->probes[i].t);
		if (rc == QKD_OK) {
			o->probes[i].routes = relay_routes_json(
				qkd_relay_routes(qkd_netsim_agent(s, o->probes[i].node)));
			if (o->probes[i].routes == NULL)
				rc = QKD_ERR_NOMEM;
		}
	}
	if (rc == QKD_OK)
		rc = qkd_netsim_finish(s, r);
	qkd_netsim_free(s);
	if (rc != QKD_OK)
		cli_error("netsim", why != NULL ? why : rc == QKD_ERR_NOMEM ? "out of memory" :
				    "the simulation failed");
	return rc == QKD_OK ? 0 : -1;
}

static int netsim_write(const char *path, const struct qkd_topology *t)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = NULL;
	int rc = -1;

	if (qkd_topology_format(t, &s, &n) != QKD_OK) {
		cli_error("--write-topology", "out of memory");
		goto out;
	}
	f = fopen(path, "w");
	if (f == NULL || fwrite(s, 1, n, f) != n || fflush(f) != 0) {
		cli_errorf("--write-topology", "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (f != NULL && fclose(f) != 0 && rc == 0) {
		cli_errorf("--write-topology", "%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(s);
	return rc;
}

static int parse(int argc, char **argv, struct netsim_options *o)
{
	int rc;

	memset(o, 0, sizeof *o);
	qkd_netsim_config_default(&o->c);
	o->argc = argc;
	o->argv = argv;
	rc = cli_getopts("netsim", argc, argv, long_opts, O_HELP, help, parse_one, o);
	if (rc != 0)
		return rc;
	if ((o->topology == NULL) == !o->generate) {
		cli_error("netsim", "give one of --topology FILE or --generate KIND N");
		return -1;
	}
	return 0;
}

static void netsim_progress(void *ctx, double fraction)
{
	progress_update(ctx, "netsim", fraction);
}

int cmd_netsim(int argc, char **argv)
{
	struct netsim_options o;
	struct qkd_topology *t = NULL;
	struct qkd_netsim_result r;
	struct progress prog;
	int rc = parse(argc, argv, &o);

	memset(&r, 0, sizeof r);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	rc = CLI_EXIT_FAIL;
	if (netsim_topology(&o, &t) != 0)
		goto out;
	if (netsim_faults(&o, t) != 0) {
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (o.write != NULL && netsim_write(o.write, t) != 0)
		goto out;
	if (o.no_run) {
		rc = CLI_EXIT_OK;
		goto out;
	}
	progress_init(&prog, !o.json && isatty(STDERR_FILENO));
	o.c.progress = netsim_progress;
	o.c.progress_ctx = &prog;
	if (netsim_execute(&o, &r) != 0) {
		progress_done(&prog);
		goto out;
	}
	progress_done(&prog);
	if (o.json) {
		json_t *probes = netsim_probes_json(t, o.probes, o.n_probes);

		if (probes == NULL || netsim_report_json(&o.c, t, &r, probes) != 0)
			goto out;
	} else if (netsim_report_human(&o.c, t, &r) != 0 ||
		   netsim_probes_human(t, o.probes, o.n_probes) != 0) {
		goto out;
	}
	if (r.mismatches != 0 || r.proto_errors != 0) {
		cli_errorf("netsim", "%llu key mismatches, %llu malformed messages",
			   (unsigned long long)r.mismatches, (unsigned long long)r.proto_errors);
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	for (size_t i = 0; i < o.n_probes; i++)
		json_decref(o.probes[i].routes);
	qkd_netsim_result_cleanup(&r);
	qkd_topology_free(t);
	return rc;
}
