/* commands.h - the subcommands of the `qkd` executable (dispatch in main.c).
 * Each takes argv with argv[0] = the subcommand's name and returns the exit
 * code (enum cli_exit). */
#ifndef QKD_COMMANDS_H
#define QKD_COMMANDS_H

int cmd_sim(int argc, char **argv);
int cmd_entropy(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_eve(int argc, char **argv);
int cmd_kme(int argc, char **argv);
int cmd_netmap(int argc, char **argv);
int cmd_netsim(int argc, char **argv);
int cmd_vpn(int argc, char **argv);

#endif
