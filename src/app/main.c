/* autoswitch: an OpenAI-compatible gateway with failover.  See README.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "accounting.h"
#include "app.h"
#include "billing.h"
#include "client.h"
#include "config.h"
#include "dns.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "counters.h"
#include "probe.h"
#include "probe_cli.h"
#include "router.h"
#include "server.h"
#include "snapshot.h"
#include "tls.h"
#include "util.h"

#define DEFAULT_CONFIG "conf/openai_proxy.yaml"
#define DEFAULT_PORT 3000

static int sig_pipe[2] = { -1, -1 };
static int shutting_down;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(sig_pipe[1], &b, 1);
    (void)r;   /* a full pipe already holds a pending wake-up */
    errno = saved;
}

static void drained(void)
{
    log_info("shutdown complete");
    loop_stop();
}

static void on_signal_pipe(void *ctx, int revents)
{
    (void)ctx;
    (void)revents;
    unsigned char sigs[32];
    ssize_t n = read(sig_pipe[0], sigs, sizeof sigs);
    for (ssize_t i = 0; i < n; i++) {
        if (sigs[i] == SIGHUP) {
            app_reload("SIGHUP", NULL, 0);
        } else if (sigs[i] == SIGTERM || sigs[i] == SIGINT) {
            if (shutting_down++) {
                log_warn("second signal: closing every connection now");
                server_close_all();
                loop_stop();
                return;
            }
            log_info("shutting down: finishing running requests (up to %ds)", SRV_DRAIN_TIMEOUT_MS / 1000);
            server_drain(drained);
        }
    }
}

static int setup_signals(void)
{
    if (pipe(sig_pipe) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit (ulimit -f) hit by a config save or a log write
     * must fail that write with EFBIG, like a full disk, not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    return loop_add(sig_pipe[0], POLLIN, on_signal_pipe, NULL);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: autoswitch [-c FILE] [-p PORT] [--check-config] [--probe] [--version] [--help]\n"
            "\n"
            "  -c, --config FILE   config file (default " DEFAULT_CONFIG ")\n"
            "  -p, --port PORT     listen port (default $PORT, else %d)\n"
            "      --check-config  validate the config file, print the result, exit 0 or 1\n"
            "      --probe         GET http://127.0.0.1:PORT/healthz, exit 0 on 200 else 1\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this text\n"
            "\n"
            "Signals: SIGHUP reloads the config; SIGTERM finishes running requests and exits.\n",
            DEFAULT_PORT);
}

static int parse_port(const char *s)
{
    long long v;
    if (!s || parse_int(s, strlen(s), 1, 65535, &v) < 0)
        return -1;
    return (int)v;
}

struct args {
    const char *config_file;
    const char *port_arg;
    bool check_only, probe;
};

/* -1: go on; else the exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "port", required_argument, NULL, 'p' },
        { "check-config", no_argument, NULL, 'C' },
        { "probe", no_argument, NULL, 'P' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *a = (struct args){ .config_file = DEFAULT_CONFIG };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:p:Vh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': a->config_file = optarg; break;
        case 'p': a->port_arg = optarg; break;
        case 'C': a->check_only = true; break;
        case 'P': a->probe = true; break;
        case 'V': printf("autoswitch %s\n", AUTOSWITCH_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "autoswitch: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

/* The port: -p, $PORT, or the default; -1 after saying why. */
static int pick_port(const struct args *a)
{
    const char *src = a->port_arg ? a->port_arg : getenv("PORT");
    int port = src && *src ? parse_port(src) : DEFAULT_PORT;
    if (port < 0)
        fprintf(stderr, "autoswitch: invalid port '%s'\n", src);
    return port;
}

/* Set up, serve until told to stop.  The exit status. */
static int serve(struct config *cfg, const char *config_file, int port)
{
    loop_init();
    counters.start_wall_ms = wall_ms();
    app_set_config_path(config_file);
    app_raise_nofile();
    struct snapshot *snap = snapshot_new(cfg);
    if (!snap) {
        fprintf(stderr, "autoswitch: out of memory\n");
        return 1;
    }
    snapshot_install(snap);
    app_apply_settings(snap->cfg);
    if (setup_signals() < 0) {
        log_error("signal setup failed: %s", strerror(errno));
        return 1;
    }
    server_set_handlers(&router_handlers);
    admin_set_host(&(struct admin_host){ app_config_path, app_reload });
    if (server_listen(snap->cfg->listen, port) < 0)
        return 1;
    if (snap->cfg->n_api_keys == 0)
        log_warn("api_keys is empty: /v1 is open to anyone who can reach port %d", server_port());
    log_info("autoswitch %s listening on %s port %d (%zu providers, %zu aliases, config %s)",
             AUTOSWITCH_VERSION, snap->cfg->listen ? snap->cfg->listen : "*", server_port(),
             snap->cfg->n_providers, snap->idx[DIALECT_OPENAI].n, config_file);
    log_set_batching(true);   /* from here on the loop flushes the log */
    loop_run();
    log_set_batching(false);
    return 0;
}

/* Everything freed, in an order that lets each part let go of the next
 * (valgrind and LeakSanitizer see no leak). */
static void teardown(void)
{
    server_close_all();
    loop_run_once(0);   /* deferred frees: requests drop their snapshots */
    acct_flush();       /* every finished request is charged by now */
    acct_free();
    bill_free();
    probe_stop_all();
    loop_run_once(0);   /* deferred frees: probes drop their entries */
    snapshot_release_current();
    health_free_all();
    up_pool_clear();
    loop_run_once(0);
    dns_shutdown();
    tls_shutdown();
    app_set_config_path(NULL);
    loop_free();
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    log_shutdown();
}

int main(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.probe) {   /* needs no config: the port is -p, $PORT or the default */
        int p = pick_port(&a);
        return p < 0 ? 1 : probe_cli(p);
    }
    log_init();
    mem_init();
    struct config *cfg = NULL;
    struct cfg_error err;
    if (config_load_file(a.config_file, &cfg, &err, app_log_warning, NULL) < 0) {
        fprintf(stderr, "autoswitch: %s\n", err.msg);
        return 1;
    }
    if (a.check_only) {
        printf("%s: OK (%zu providers)\n", a.config_file, cfg->n_providers);
        config_free(cfg);
        return 0;
    }
    int port = pick_port(&a);
    if (port < 0) {
        config_free(cfg);
        return 2;
    }
    rc = serve(cfg, a.config_file, port);
    if (rc == 0)
        teardown();
    return rc;
}
