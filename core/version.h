/* The versions ember and ember-jailer report. */
#ifndef EMBER_VERSION_H
#define EMBER_VERSION_H

/* Ember's own release: GET /'s vmm_version, and written into snapshot files. */
#define EMBER_VERSION_STRING "0.1.0"

/*
 * The Firecracker release whose API Ember answers (the contract's info.version). Clients gate on it:
 * Kata Containers reads the second word of `--version`'s first line and refuses anything below 0.21.1,
 * so that word (and GET /version's firecracker_version) is this, not Ember's own number.
 */
#define EMBER_FIRECRACKER_API_VERSION "1.17.0-dev"

#endif
