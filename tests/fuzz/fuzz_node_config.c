/* libFuzzer target: the `qkd node` configuration parser
 * (lib/node/config*.c, libconfig underneath). The input becomes the config
 * file, in a scratch directory that also holds a valid authentication key
 * file and stand-ins for the key manager's PEM files, so inputs can get
 * past the file checks to the value checks. The parser must refuse or
 * accept without crashing, and always NUL-terminate its message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/node_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/qkd-fuzz-config.XXXXXX";
static char path[sizeof dir + 16];

static int setup(void)
{
	char key[sizeof dir + 16];
	static unsigned char zeros[4096];
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/n.conf", dir);
	snprintf(key, sizeof key, "%s/ab.key", dir);
	f = fopen(key, "wb");
	if (f == NULL)
		return -1;
	memset(zeros, 0x5a, sizeof zeros);
	fwrite(zeros, 1, sizeof zeros, f);
	if (fclose(f) != 0)
		return -1;
	/* Stand-ins for the kme group's PEM files: the parser only checks that
	 * they are readable, so inputs reach the SAE table's rules. */
	snprintf(key, sizeof key, "%s/pki", dir);
	if (mkdir(key, 0700) != 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = { "ca.pem", "server.pem", "server.key" };
		char pem[sizeof dir + 32];

		snprintf(pem, sizeof pem, "%s/pki/%s", dir, names[i]);
		f = fopen(pem, "wb");
		if (f == NULL)
			return -1;
		fputs("-----BEGIN STAND-IN-----\n", f);
		if (fclose(f) != 0)
			return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct qkd_node_config *cfg;
	char err[512];
	FILE *f;

	if (!ready && setup() != 0)
		abort();
	ready = 1;
	f = fopen(path, "wb");
	if (f == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	cfg = malloc(sizeof *cfg);
	if (cfg == NULL)
		return 0;
	err[0] = 'x';
	if (qkd_node_config_load(path, cfg, err, sizeof err) != QKD_OK &&
	    memchr(err, '\0', sizeof err) == NULL)
		abort();
	free(cfg);
	return 0;
}
