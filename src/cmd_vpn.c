/* qkd vpn - the QKD-keyed IPsec gateway (docs/vpn.md; issue 14):
 *
 *   qkd vpn --config FILE [--keylog FILE] [--check]   the daemon
 *   qkd vpn status --socket PATH [--json]               ask a running one
 *
 * This file is the command line only: the daemon is vpn_daemon.c and its
 * neighbours (vpn_daemon.h), the status reply vpn_status.c.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "status_client.h"
#include "qkd/error.h"
#include "vpn_daemon.h"

static void help(void)
{
	printf("usage: qkd vpn --config FILE [--keylog FILE] [--check]\n"
	       "       qkd vpn status --socket PATH [--json]\n\n"
	       "Run an IPsec gateway (IKEv2, ESP in UDP on port 4500 through a TUN\n"
	       "device) whose tunnels mix a fresh QKD key from an ETSI GS QKD 014 key\n"
	       "manager into every Child SA (RFC 8784, RFC 9867). docs/vpn.md.\n\n"
	       "  --config FILE   the gateway's configuration (docs/vpn.md \"Configuration\")\n"
	       "  --keylog FILE   DEBUG ONLY: append every ESP and IKE SA key to FILE as\n"
	       "                  Wireshark esp_sa / ikev2_decryption_table records\n"
	       "  --check         load and check FILE, print one line and exit\n"
	       "  status          show the tunnels of the gateway whose status socket is PATH\n");
}

struct vpn_args {
	const char *config, *keylog;
	bool check;
};

static int parse(int argc, char **argv, struct vpn_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			help();
			return 1;
		}
		if (strcmp(o, "--check") == 0) {
			a->check = true;
		} else if ((strcmp(o, "--config") == 0 || strcmp(o, "--keylog") == 0) && i + 1 < argc) {
			*(o[2] == 'c' ? &a->config : &a->keylog) = argv[++i];
		} else if (strcmp(o, "--config") == 0 || strcmp(o, "--keylog") == 0) {
			cli_error(o, "missing file name");
			return -1;
		} else {
			cli_errorf("vpn", "unknown argument '%s' (see qkd vpn --help)", o);
			return -1;
		}
	}
	if (!a->config) {
		cli_error("vpn", "--config FILE is required");
		return -1;
	}
	return 0;
}

static int run_daemon(struct vpn_daemon *d, const struct vpn_args *a)
{
	char why[512] = "";
	int rc;

	if (logsink_open(&d->logsink, d->cfg.log_file, d->cfg.log_level, &d->log) != 0)
		return CLI_EXIT_FAIL;
	d->config_path = a->config;
	rc = vpn_daemon_run(d, a->keylog, why, sizeof why);
	if (rc != 0) {
		cli_errorf("vpn", "%s", why);
		qkd_logf(&d->log, QKD_LOG_ERROR, "vpn %s: cannot start: %s", d->cfg.name, why);
	}
	vpn_daemon_free(d);
	logsink_close(&d->logsink);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int status_cmd(int argc, char **argv);

int cmd_vpn(int argc, char **argv)
{
	struct vpn_args a = {0};
	struct vpn_daemon *d;
	char err[512];
	int rc;

	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return status_cmd(argc - 1, argv + 1);
	rc = parse(argc, argv, &a);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	d = calloc(1, sizeof *d);
	if (!d) {
		cli_error("vpn", "out of memory");
		return CLI_EXIT_FAIL;
	}
	if (qkd_vpn_config_load(a.config, &d->cfg, err, sizeof err) != 0) {
		fprintf(stderr, "qkd: %s\n", err);
		free(d);
		return CLI_EXIT_USAGE;
	}
	if (a.check) {
		printf("%s: gateway %s: %zu tunnel(s), %zu key manager(s)\n", a.config, d->cfg.name,
		       d->cfg.n_tunnels, d->cfg.n_kmes);
		free(d);
		return CLI_EXIT_OK;
	}
	rc = run_daemon(d, &a);
	free(d);
	return rc;
}

/* ---- qkd vpn status ---- */

static void status_help(void)
{
	printf("usage: qkd vpn status --socket PATH [--json]\n\n"
	       "Show each tunnel of the gateway whose status socket is PATH: its IKE SA,\n"
	       "ESP SAs (SPI, bytes, packets), the QKD key_IDs in use, rekeys, QKD key\n"
	       "mismatches and fallbacks, and the packets dropped by reason.\n");
}

static long long jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void print_tunnel(json_t *t)
{
	json_t *c = json_object_get(t, "counters"), *tr = json_object_get(t, "traffic");
	json_t *lat = json_object_get(t, "rekey_latency"), *v, *drops;
	const char *key_id = json_string_value(json_object_get(t, "key_id"));
	const char *k;
	size_t i;

	printf("tunnel %s to %s: %s, qkd %s\n", json_string_value(json_object_get(t, "name")),
	       json_string_value(json_object_get(t, "peer")),
	       json_string_value(json_object_get(t, "state")),
	       json_string_value(json_object_get(t, "qkd_policy")));
	printf("  IKE SA %s_i %s_r, Child SA in %s out %s, QKD key %s\n",
	       json_string_value(json_object_get(t, "ike_spi_i")),
	       json_string_value(json_object_get(t, "ike_spi_r")),
	       json_string_value(json_object_get(t, "spi_in")),
	       json_string_value(json_object_get(t, "spi_out")), key_id ? key_id : "none");
	json_array_foreach(json_object_get(t, "sas"), i, v)
		printf("  SA %s %-3s %s%lld bytes, %lld packets, %s\n",
		       json_string_value(json_object_get(v, "spi")),
		       json_string_value(json_object_get(v, "dir")),
		       json_is_true(json_object_get(v, "active")) ? "(active) " : "",
		       jint(v, "bytes"), jint(v, "packets"),
		       json_string_value(json_object_get(v, "state")));
	printf("  traffic: out %lld packets %lld bytes, in %lld packets %lld bytes\n",
	       jint(tr, "out_packets"), jint(tr, "out_bytes"), jint(tr, "in_packets"),
	       jint(tr, "in_bytes"));
	printf("  rekeys %lld (IKE %lld), QKD mismatches %lld, fallbacks %lld, auth failures %lld, "
	       "QKD bits %lld\n",
	       jint(c, "child_rekeys"), jint(c, "ike_rekeys"), jint(c, "qkd_mismatches"),
	       jint(c, "qkd_fallbacks"), jint(c, "auth_failures"), jint(t, "qkd_bits"));
	if (jint(lat, "n") > 0)
		printf("  rekey latency (key manager included): p50 %.3f s, p99 %.3f s over %lld\n",
		       json_real_value(json_object_get(lat, "p50_s")),
		       json_real_value(json_object_get(lat, "p99_s")), jint(lat, "n"));
	drops = json_object_get(tr, "drops");
	printf("  drops:");
	json_object_foreach(drops, k, v)
		if (json_integer_value(v) > 0)
			printf(" %s %lld", k, json_integer_value(v));
	printf("\n  last event: %s\n", json_string_value(json_object_get(t, "last_event")));
}

static int status_cmd(int argc, char **argv)
{
	const char *sock = NULL;
	bool as_json = false;
	char why[256];
	size_t len, i;
	json_t *j, *t;
	char *reply;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			status_help();
			return CLI_EXIT_OK;
		} else if (strcmp(argv[k], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[k], "--socket") == 0 && k + 1 < argc) {
			sock = argv[++k];
		} else {
			cli_errorf("vpn status", "unknown argument '%s' (see qkd vpn status --help)",
				   argv[k]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!sock) {
		cli_error("vpn status", "--socket PATH is required");
		return CLI_EXIT_USAGE;
	}
	reply = status_client_ask(sock, &len, why, sizeof why);
	if (!reply) {
		const char *node = strstr(why, "the node");

		/* The client is shared with `qkd status`, which speaks of a node. */
		if (node)
			cli_errorf(sock, "%.*sthe gateway%s", (int)(node - why), why, node + 8);
		else
			cli_error(sock, why);
		return CLI_EXIT_FAIL;
	}
	if (as_json) {
		fputs(reply, stdout);
		free(reply);
		return CLI_EXIT_OK;
	}
	j = json_loads(reply, 0, NULL);
	free(reply);
	if (!j) {
		cli_error(sock, "the gateway's answer is not JSON");
		return CLI_EXIT_FAIL;
	}
	printf("gateway %s on %s, device %s, up %.0f s\n",
	       json_string_value(json_object_get(j, "gateway")),
	       json_string_value(json_object_get(j, "listen")),
	       json_string_value(json_object_get(j, "tun")),
	       json_real_value(json_object_get(j, "uptime_s")));
	json_array_foreach(json_object_get(j, "tunnels"), i, t)
		print_tunnel(t);
	json_decref(j);
	return CLI_EXIT_OK;
}
