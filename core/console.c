#include "core/console.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The process has one controlling terminal: its saved mode is process state. */
static struct termios saved;
static volatile sig_atomic_t saved_valid;

void console_restore(void)
{
    if (saved_valid) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        saved_valid = 0;
    }
}

/* Fatal signals must not leave the user's terminal raw: restore, then die as before. */
static void fatal_signal(int sig)
{
    console_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

int console_raw_begin(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) < 0)
        return 0;
    struct termios raw = saved;
    cfmakeraw(&raw);
    /* Keep ISIG so Ctrl-C still stops the VM cleanly; keep output processing for \n. */
    raw.c_lflag |= ISIG;
    raw.c_oflag |= OPOST;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
        return 0;
    saved_valid = 1;
    atexit(console_restore);
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGHUP, SIGQUIT};
    for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = fatal_signal;
        sigaction(fatal[i], &sa, NULL);
    }
    return 1;
}
