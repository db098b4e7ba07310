/* test_topology.c - the topology file (qkd/topology.h, lib/relay/topology*.c,
 * docs/netsim.md "The topology file"): the 6-node mesh parses to the nodes,
 * SAEs and links it says, with the defaults filled in; format then parse
 * gives back an equal topology (also for every key set and for generated
 * topologies); every error of the format is refused at the right line with
 * its reason; the limits (1 MiB, 100000 lines, 32 links at a node, 64 SAEs)
 * hold; the generator's shapes have the degrees they promise and are
 * connected; a link's rate comes from the optical model and falls with
 * distance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/topology.h"

static const char mesh6[] =
	"# the 6-node mesh: a ring with a chord\n"
	"node A sae=SAE_A\n"
	"node B sae=SAE_B\n"
	"node C sae=SAE_C\n"
	"node D sae=SAE_D,SAE_D2   # two SAEs\n"
	"node E\n"
	"\n"
	"node F sae=SAE_F\n"
	"link A B km=20\n"
	"link B C\tchannel=free-space km=1.5 day=yes\n"
	"link C D latency_ms=3 rate_bps=5000 pool_bits=2000000\n"
	"link D E\n"
	"link E F km=30\n"
	"link F A\n"
	"link B E channel=free-space\n";

static struct qkd_topology *parse_ok(const char *s)
{
	struct qkd_topology *t = NULL;
	size_t line = 99;
	const char *why = "unset";

	assert_int_equal(qkd_topology_parse(s, strlen(s), &t, &line, &why), QKD_OK);
	assert_non_null(t);
	assert_int_equal(line, 0);
	assert_null(why);
	return t;
}

static void test_mesh6(void **state)
{
	struct qkd_topology *t = parse_ok(mesh6);

	(void)state;
	assert_int_equal(t->n_nodes, 6);
	assert_int_equal(t->n_links, 7);
	assert_string_equal(t->nodes[3].id, "D");
	assert_int_equal(t->nodes[3].n_saes, 2);
	assert_string_equal(t->nodes[3].saes[1], "SAE_D2");
	assert_int_equal(t->nodes[4].n_saes, 0);
	assert_int_equal(t->nodes[1].n_links, 3);	/* B: A, C, E */
	assert_int_equal(qkd_topology_find(t, "F"), 5);
	assert_int_equal(qkd_topology_find(t, "G"), -1);
	/* A B: Alice A, Bob B, fiber, 20 km, default latency and pool. */
	assert_int_equal(t->links[0].a, 0);
	assert_int_equal(t->links[0].b, 1);
	assert_int_equal(t->links[0].channel, QKD_CHANNEL_FIBER);
	assert_true(t->links[0].km == 20);
	assert_false(t->links[0].latency_set);
	assert_true(fabs(qkd_topology_link_latency_s(&t->links[0]) - (0.005 * 20 + 0.1) / 1000) < 1e-15);
	assert_int_equal(t->links[0].pool_bits, 1000000);
	assert_int_equal(t->links[1].channel, QKD_CHANNEL_FREE_SPACE);
	assert_true(t->links[1].day);
	assert_true(t->links[1].km == 1.5);
	assert_true(t->links[2].latency_set && t->links[2].latency_ms == 3);
	assert_true(qkd_topology_link_latency_s(&t->links[2]) == 0.003);
	assert_true(t->links[2].rate_set && qkd_topology_link_rate_bps(&t->links[2]) == 5000);
	assert_int_equal(t->links[2].pool_bits, 2000000);
	assert_true(t->links[3].km == 10);
	qkd_topology_free(t);
}

static void assert_same(const struct qkd_topology *x, const struct qkd_topology *y)
{
	assert_int_equal(x->n_nodes, y->n_nodes);
	assert_int_equal(x->n_links, y->n_links);
	for (size_t i = 0; i < x->n_nodes; i++) {
		assert_string_equal(x->nodes[i].id, y->nodes[i].id);
		assert_int_equal(x->nodes[i].n_saes, y->nodes[i].n_saes);
		assert_int_equal(x->nodes[i].n_links, y->nodes[i].n_links);
		for (size_t k = 0; k < x->nodes[i].n_saes; k++)
			assert_string_equal(x->nodes[i].saes[k], y->nodes[i].saes[k]);
	}
	for (size_t i = 0; i < x->n_links; i++) {
		const struct qkd_topo_link *a = &x->links[i], *b = &y->links[i];

		assert_int_equal(a->a, b->a);
		assert_int_equal(a->b, b->b);
		assert_int_equal(a->channel, b->channel);
		assert_true(a->km == b->km);
		assert_int_equal(a->day, b->day);
		assert_int_equal(a->latency_set, b->latency_set);
		assert_int_equal(a->rate_set, b->rate_set);
		assert_true(!a->latency_set || a->latency_ms == b->latency_ms);
		assert_true(!a->rate_set || a->rate_bps == b->rate_bps);
		assert_int_equal(a->pool_bits, b->pool_bits);
	}
}

static void roundtrip(const struct qkd_topology *t)
{
	struct qkd_topology *u;
	char *s;
	size_t n;

	assert_int_equal(qkd_topology_format(t, &s, &n), QKD_OK);
	assert_int_equal(strlen(s), n);
	u = parse_ok(s);
	assert_same(t, u);
	free(s);
	qkd_topology_free(u);
}

static void test_roundtrip(void **state)
{
	struct qkd_topology *t = parse_ok(mesh6);

	(void)state;
	roundtrip(t);
	/* Reals that need all 17 digits. */
	t->links[0].km = 1.0 / 3.0;
	t->links[1].latency_set = true;
	t->links[1].latency_ms = 0.1 + 0.2;
	qkd_topology_free((roundtrip(t), t));
	for (int shape = 0; shape < 3; shape++) {
		assert_int_equal(qkd_topology_generate((enum qkd_topo_shape)shape, 50, 7, &t), QKD_OK);
		roundtrip(t);
		qkd_topology_free(t);
	}
}

/* Each bad file: its error line and the start of its reason. */
static const struct {
	const char *text;
	size_t line;
	const char *why;
} bad[] = {
	{"node A\nnode B\nnode A\n", 3, "node id used twice"},
	{"node A sae=X\nnode B sae=Y,X\n", 2, "SAE used twice"},
	{"node A sae=X,X\n", 1, "SAE used twice"},
	{"node A\nlink A B\n", 2, "link names an unknown node"},
	{"node A\n\nlink A A\n", 3, "node linked to itself"},
	{"node A\nnode B\nlink A B\nlink B A\n", 4, "pair linked twice"},
	{"node A\nnode B\nlink A B\nlink A B km=3\n", 4, "pair linked twice"},
	{"nodes A\n", 1, "unknown statement"},
	{"node A\nnode B\nlink A B speed=3\n", 3, "unknown key"},
	{"node A foo=1\n", 1, "unknown key"},
	{"node A\nnode B\nlink A B km=-1\n", 3, "bad value of km"},
	{"node A\nnode B\nlink A B km=abc\n", 3, "bad value of km"},
	{"node A\nnode B\nlink A B km=nan\n", 3, "bad value of km"},
	{"node A\nnode B\nlink A B km=1e400\n", 3, "bad value of km"},
	{"node A\nnode B\nlink A B km=\n", 3, "bad value of km"},
	{"node A\nnode B\nlink A B channel=copper\n", 3, "bad value of channel"},
	{"node A\nnode B\nlink A B day=maybe channel=free-space\n", 3, "bad value of day"},
	{"node A\nnode B\nlink A B day=yes\n", 3, "day= applies to free-space"},
	{"node A\nnode B\nlink A B latency_ms=-2\n", 3, "bad value of latency_ms"},
	{"node A\nnode B\nlink A B rate_bps=x\n", 3, "bad value of rate_bps"},
	{"node A\nnode B\nlink A B pool_bits=-1\n", 3, "bad value of pool_bits"},
	{"node A\nnode B\nlink A B pool_bits=1.5\n", 3, "bad value of pool_bits"},
	{"node A\nnode B\nlink A B km=1 km=2\n", 3, "key given twice"},
	{"node A\nnode B\nlink A B km\n", 3, "expected key=value"},
	{"node -A\n", 1, "bad node id"},
	{"node A\x01\n", 1, "control character"},
	{"node\n", 1, "node without an id"},
	{"node A\nlink A\n", 2, "link needs two node ids"},
	{"node A sae=\n", 1, "bad SAE id"},
	{"node A sae=a/b\n", 1, "bad SAE id"},
	{"node A sae=x sae=y\n", 1, "node takes one sae= list"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct qkd_topology *t = (void *)1;
		size_t line = 0;
		const char *why = NULL;
		int rc = qkd_topology_parse(bad[i].text, strlen(bad[i].text), &t, &line, &why);

		if (rc != QKD_ERR_INVAL || line != bad[i].line || why == NULL ||
		    strncmp(why, bad[i].why, strlen(bad[i].why)) != 0)
			fail_msg("case %zu: rc %d line %zu why '%s'", i, rc, line, why ? why : "");
		assert_null(t);
	}
}

static void test_limits(void **state)
{
	size_t cap = QKD_TOPO_BYTES_MAX + 64, n = 0, line;
	char *buf = malloc(cap);
	struct qkd_topology *t;
	const char *why;

	(void)state;
	assert_non_null(buf);
	/* 33 links at node h. */
	n += (size_t)sprintf(buf + n, "node h\n");
	for (int i = 0; i < 33; i++)
		n += (size_t)sprintf(buf + n, "node x%d\nlink h x%d\n", i, i);
	assert_int_equal(qkd_topology_parse(buf, n, &t, &line, &why), QKD_ERR_INVAL);
	assert_int_equal(line, 1 + 2 * 33);
	assert_string_equal(why, "more than 32 links at a node");
	/* 32 are fine (the same file without the last link). */
	assert_int_equal(qkd_topology_parse(buf, n - strlen("link h x32\n"), &t, &line, &why),
			 QKD_OK);
	assert_int_equal(t->nodes[0].n_links, 32);
	qkd_topology_free(t);
	/* 65 SAEs at a node. */
	n = (size_t)sprintf(buf, "node A sae=s0");
	for (int i = 1; i < 65; i++)
		n += (size_t)sprintf(buf + n, ",s%d", i);
	assert_int_equal(qkd_topology_parse(buf, n, &t, &line, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "more than 64 SAEs at a node");
	assert_int_equal(qkd_topology_parse(buf, n - 4, &t, &line, &why), QKD_OK);
	qkd_topology_free(t);
	/* 100000 lines pass, 100001 do not (comments and blank lines count). */
	memset(buf, '\n', 100000);
	assert_int_equal(qkd_topology_parse(buf, 100000, &t, &line, &why), QKD_OK);
	qkd_topology_free(t);
	buf[100000] = '#';
	assert_int_equal(qkd_topology_parse(buf, 100001, &t, &line, &why), QKD_ERR_RANGE);
	assert_int_equal(line, 100001);
	assert_string_equal(why, "file over 100000 lines");
	/* Over 1 MiB: refused before parsing, at the line of the byte past the limit. */
	memset(buf, '#', cap);
	for (size_t i = 99; i < cap; i += 100)
		buf[i] = '\n';
	assert_int_equal(qkd_topology_parse(buf, QKD_TOPO_BYTES_MAX, &t, &line, &why), QKD_OK);
	qkd_topology_free(t);
	assert_int_equal(qkd_topology_parse(buf, QKD_TOPO_BYTES_MAX + 1, &t, &line, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(line, QKD_TOPO_BYTES_MAX / 100 + 1);
	assert_string_equal(why, "file over 1 MiB");
	free(buf);
}

static void test_load(void **state)
{
	char path[] = "/tmp/test_topology_XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	struct qkd_topology *t;
	size_t line;
	const char *why;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(mesh6, f);
	fclose(f);
	assert_int_equal(qkd_topology_load(path, &t, &line, &why), QKD_OK);
	assert_int_equal(t->n_links, 7);
	qkd_topology_free(t);
	unlink(path);
	assert_int_equal(qkd_topology_load(path, &t, &line, &why), QKD_ERR_IO);
	assert_null(t);
	assert_int_equal(line, 0);
}

/* Breadth-first from node 0 reaches every node. */
static bool connected(const struct qkd_topology *t)
{
	size_t *q = calloc(t->n_nodes, sizeof *q), head = 0, tail = 0;
	bool *seen = calloc(t->n_nodes, sizeof *seen);
	bool ok;

	assert_true(q && seen);
	seen[0] = true;
	q[tail++] = 0;
	while (head < tail) {
		size_t u = q[head++];

		for (size_t i = 0; i < t->n_links; i++) {
			size_t v = t->links[i].a == u ? t->links[i].b :
				   t->links[i].b == u ? t->links[i].a : SIZE_MAX;

			if (v != SIZE_MAX && !seen[v]) {
				seen[v] = true;
				q[tail++] = v;
			}
		}
	}
	ok = tail == t->n_nodes;
	free(q);
	free(seen);
	return ok;
}

static void test_generate(void **state)
{
	struct qkd_topology *t, *u;
	enum qkd_topo_shape sh;

	(void)state;
	assert_int_equal(qkd_topology_generate(QKD_TOPO_RING, 10, 1, &t), QKD_OK);
	assert_int_equal(t->n_links, 10);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(t->nodes[i].n_links, 2);
	assert_string_equal(t->nodes[9].id, "n9");
	assert_string_equal(t->nodes[9].saes[0], "sae-n9");
	assert_true(connected(t));
	qkd_topology_free(t);
	/* A 10-node grid: 4 columns, rows of 4, 4, 2: 3 + 3 + 1 across, 6 down. */
	assert_int_equal(qkd_topology_generate(QKD_TOPO_GRID, 10, 1, &t), QKD_OK);
	assert_int_equal(t->n_links, 13);
	assert_true(connected(t));
	qkd_topology_free(t);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		assert_int_equal(qkd_topology_generate(QKD_TOPO_RANDOM, 100 + seed, seed, &t), QKD_OK);
		assert_true(connected(t));
		for (size_t i = 0; i < t->n_nodes; i++)
			assert_in_range(t->nodes[i].n_links, 2, 5);
		assert_true(t->n_links > t->n_nodes);	/* chords besides the ring */
		for (size_t i = 0; i < t->n_links; i++)
			assert_true(t->links[i].km >= 5 && t->links[i].km <= 50);
		/* The same seed gives the same network. */
		assert_int_equal(qkd_topology_generate(QKD_TOPO_RANDOM, 100 + seed, seed, &u), QKD_OK);
		assert_same(t, u);
		qkd_topology_free(u);
		qkd_topology_free(t);
	}
	assert_int_equal(qkd_topology_generate(QKD_TOPO_RING, 2, 1, &t), QKD_ERR_INVAL);
	assert_int_equal(qkd_topology_generate(QKD_TOPO_GRID, 4097, 1, &t), QKD_ERR_INVAL);
	assert_null(t);
	assert_int_equal(qkd_topology_shape_parse("grid", &sh), QKD_OK);
	assert_int_equal(sh, QKD_TOPO_GRID);
	assert_int_equal(qkd_topology_shape_parse("mesh", &sh), QKD_ERR_INVAL);
}

static void test_rate(void **state)
{
	struct qkd_topology *t = parse_ok("node A\nnode B\nnode C\nnode D\nnode E\n"
					  "link A B km=10\nlink A C km=50\nlink A D km=400\n"
					  "link B C channel=free-space km=1\n"
					  "link B D channel=free-space km=1 day=yes\n");
	struct qkd_link_params p;
	double r10, r50, r400, night, day, expect;

	(void)state;
	r10 = qkd_topology_link_rate_bps(&t->links[0]);
	r50 = qkd_topology_link_rate_bps(&t->links[1]);
	r400 = qkd_topology_link_rate_bps(&t->links[2]);
	night = qkd_topology_link_rate_bps(&t->links[3]);
	day = qkd_topology_link_rate_bps(&t->links[4]);
	assert_true(r10 > r50 && r50 > 0);
	assert_true(r400 == 0);		/* dark counts win: no key */
	assert_true(night > day);	/* daylight background costs key */
	/* The formula by hand at 10 km: 10 MHz * 1/2 * GLLP rate. */
	qkd_link_params_default(&p);
	{
		double eta = pow(10, -0.2 * 10 / 10) * p.detector_efficiency, mu = 0.5;
		double y0 = 2 * p.dark_count, q = y0 + 1 - exp(-eta * mu);
		double e = (y0 / 2 + p.misalignment * (1 - exp(-eta * mu))) / q;
		double y1 = y0 + eta, e1 = (y0 / 2 + p.misalignment * eta) / y1;
		double h1 = -e1 * log2(e1) - (1 - e1) * log2(1 - e1);
		double he = -e * log2(e) - (1 - e) * log2(1 - e);

		(void)y1;
		expect = p.rate_hz * 0.5 * (exp(-mu) * y0 + mu * exp(-mu) * y1 * (1 - h1) -
					    1.16 * q * he);
	}
	/* Within a few per cent: the library's Y0 counts the two detectors
	 * without the small double-click correction the sketch above skips. */
	assert_true(fabs(r10 - expect) / expect < 0.05);
	assert_true(r10 > 1e4 && r10 < 1e6);
	qkd_topology_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mesh6),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
