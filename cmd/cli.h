/* Command-line parsing for `ember`. */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stdio.h>

#include "vm/config.h"
#include "core/errmsg.h"
#include "core/log.h"

struct cli_opts {
    struct vm_config vm; /* owns its strings: cli_free releases them, unless moved out (ctl_take_config) */
    enum log_level log_level;
    int help;
    int version;
    const char *api_sock;
    const char *config_file;
    const char *mmds_metadata; /* --metadata FILE: the MMDS data store's first content */
    const char *instance_id;
    int no_api;
    int no_seccomp;
    int seccomp_print;
    /* --snapshot-load: PUT /snapshot/load's fields from the command line */
    const char *snapshot_load;
    const char *snapshot_mem;  /* --mem FILE: the File backend */
    const char *snapshot_uffd; /* --mem-uffd SOCKET: the Uffd backend */
    int snapshot_resume;
    int track_dirty_pages;
    const char *net_override[EMBER_MAX_NETS]; /* "IFACE=TAP" */
    unsigned nr_net_overrides;
};

/* 0 on success; -EINVAL with a message naming the bad argument. */
int cli_parse(int argc, char **argv, struct cli_opts *o, struct errmsg *err);
void cli_usage(FILE *out);
void cli_free(struct cli_opts *o);
/* Parses "id=rootfs,path=...,root,ro,io_engine=sync|async" (the string is modified in place). */
int cli_parse_drive(char *spec, struct blk_config *d, struct errmsg *err);
/* Parses "id=eth0,tap=tap0,mac=06:00:ac:10:00:02" (modified in place). */
int cli_parse_net(char *spec, struct net_config *n, struct errmsg *err);

#endif
