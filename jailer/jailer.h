/*
 * ember-jailer: what every jailer file shares. The exit statuses, one per
 * step, are the table in docs/jailer.md; any other status the jailer returns
 * is ember's own (or 128 + the signal that killed it).
 */
#ifndef EMBER_JAILER_H
#define EMBER_JAILER_H

enum jl_exit {
    JL_EXIT_ARGS = 200,     /* bad arguments */
    JL_EXIT_SANITIZE = 201, /* closing inherited fds, clearing the environment */
    JL_EXIT_JAILDIR = 202,  /* creating <base>/<exec name>/<id>/root */
    JL_EXIT_COPY = 203,     /* copying the exec file (and its shared libraries) into the jail */
    JL_EXIT_NETNS = 204,    /* joining --netns */
    JL_EXIT_RLIMITS = 205,  /* --resource-limit */
    JL_EXIT_CGROUPS = 206,  /* creating, writing or joining the cgroups */
    JL_EXIT_MOUNTNS = 207,  /* new mount namespace, pivot_root into the jail */
    JL_EXIT_DEVICES = 208,  /* /dev/kvm, /dev/net/tun, /dev/urandom and the jail's own directories */
    JL_EXIT_PIDNS = 209,    /* --new-pid-ns, forking the jailed child, its new session */
    JL_EXIT_DAEMON = 210,   /* --daemonize */
    JL_EXIT_CAPS = 211,     /* dropping every capability and the bounding set */
    JL_EXIT_IDS = 212,      /* setgroups(0), setresgid, setresuid */
    JL_EXIT_NNP = 213,      /* PR_SET_NO_NEW_PRIVS */
    JL_EXIT_EXEC = 214,     /* execve of the copied exec file */
    JL_EXIT_CLEANUP = 215,  /* removing the jail directory or cgroups after the VM ended */
    JL_EXIT_SUPERVISE = 216 /* waiting for the jailed process */
};

/* The step name printed in "ember-jailer: <step>: <what failed>". */
const char *jl_step_name(enum jl_exit code);

#endif
