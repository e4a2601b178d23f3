/* A hostile libfabric.so.1 for tests/bounds.rs: efa-doctor's native helper loads it from
 * LD_LIBRARY_PATH like the real one. HOSTILE_FABRIC chooses what fi_getinfo does (words may
 * be combined):
 *   daemon  fork a child that sleeps 120 s holding the helper's stdout and stderr, and write
 *           its pid to $HOSTILE_FABRIC_PIDFILE;
 *   hang    sleep 120 s;
 *   spew    write $HOSTILE_FABRIC_SPEW_BYTES bytes of 4 KiB lines to stderr;
 *   record  append "fi_getinfo" to $HOSTILE_FABRIC_CALLS (tests/gating.rs: was it called?);
 *   slow    sleep $HOSTILE_FABRIC_SLEEP_MS milliseconds.
 * Then it returns -FI_ENODATA (no provider). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint32_t fi_version(void) { return (1u << 16) | 18u; }

const char *fi_strerror(int err) {
    (void)err;
    return "hostile test library";
}

void fi_freeinfo(void *info) { (void)info; }

void *fi_dupinfo(const void *info) {
    (void)info;
    return NULL;
}

int fi_fabric(void *attr, void **fabric, void *context) {
    (void)attr;
    (void)fabric;
    (void)context;
    return -38;
}

static void start_daemon(void) {
    pid_t pid = fork();
    if (pid == 0) {
        sleep(120);
        _exit(0);
    }
    const char *file = getenv("HOSTILE_FABRIC_PIDFILE");
    if (pid > 0 && file) {
        FILE *out = fopen(file, "w");
        if (out) {
            fprintf(out, "%d\n", (int)pid);
            fclose(out);
        }
    }
}

int fi_getinfo(uint32_t version, const char *node, const char *service, uint64_t flags,
               const void *hints, void **info) {
    (void)version;
    (void)node;
    (void)service;
    (void)flags;
    (void)hints;
    const char *mode = getenv("HOSTILE_FABRIC");
    if (!mode)
        mode = "";
    if (strstr(mode, "daemon"))
        start_daemon();
    if (strstr(mode, "record")) {
        const char *file = getenv("HOSTILE_FABRIC_CALLS");
        FILE *out = file ? fopen(file, "a") : NULL;
        if (out) {
            fputs("fi_getinfo\n", out);
            fclose(out);
        }
    }
    if (strstr(mode, "slow")) {
        const char *ms = getenv("HOSTILE_FABRIC_SLEEP_MS");
        long long n = ms ? atoll(ms) : 0;
        struct timespec t = {(time_t)(n / 1000), (long)(n % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    if (strstr(mode, "hang"))
        sleep(120);
    if (strstr(mode, "spew")) {
        static char line[4096];
        memset(line, 'x', sizeof line - 1);
        line[sizeof line - 1] = '\n';
        const char *n = getenv("HOSTILE_FABRIC_SPEW_BYTES");
        long long total = n ? atoll(n) : 0;
        for (long long done = 0; done < total; done += (long long)sizeof line)
            if (write(2, line, sizeof line) < 0)
                break;
    }
    *info = NULL;
    return -61;
}
