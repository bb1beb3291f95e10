/* The version ember and ember-jailer report (and GET / and GET /version). */
#ifndef EMBER_VERSION_H
#define EMBER_VERSION_H

#define EMBER_VERSION_STRING "0.1.0"

#endif
