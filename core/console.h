/* The host terminal as the guest's serial console: raw input, restored on every exit. */
#ifndef EMBER_CONSOLE_H
#define EMBER_CONSOLE_H

/* Puts stdin in raw mode if it is a terminal; returns 1 if it did. */
int console_raw_begin(void);
/* Restores the saved terminal mode; safe to call more than once and from a signal handler. */
void console_restore(void);

#endif
