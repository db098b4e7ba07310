/* vpn_config_int.h - shared by the parts of `qkd vpn`'s configuration
 * parser (vpn_config.c: the file, the gateway and kmes; vpn_config_tunnel.c:
 * one tunnel), on the node's table-driven machinery. Internal to libqkd. */
#ifndef QKD_VPN_CONFIG_INT_H
#define QKD_VPN_CONFIG_INT_H

#include "../node/config_int.h"
#include "qkd/vpn_config.h"

/* Read tunnels[i] of v from group g (v's gateway and kmes read already). */
__attribute__((warn_unused_result))
int vpn_tunnel_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_vpn_config *v,
		    size_t i);

#endif
