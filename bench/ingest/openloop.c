/* Open-loop, fixed-rate HTTP/1.1 load generator for bench/ingest (Debian has no wrk2).
 *
 *   openloop PORT RATE SECONDS REQUEST_FILE OUT_FILE
 *
 * REQUEST_FILE holds raw HTTP requests back to back, each followed by the byte 0x1E (the same
 * file format as requests.lua). Request n is due at t0 + n / RATE, whatever happened to the
 * earlier ones (open loop: a slow server cannot slow the generator down); each goes out on a
 * fresh TCP connection to 127.0.0.1:PORT (gunicorn's sync workers close every connection).
 * Timers use epoll_pwait2, so requests leave within a few microseconds of their due time.
 *
 * OUT_FILE gets one line per request: "due_us send_minus_due_us latency_us status", where
 * latency is measured from the due time (or from the send, for a request sent before its due
 * time, which does not happen here beyond a few microseconds), and status is the HTTP status,
 * 0 (closed before a complete response), -1 (socket error), -2 (not sent: MAX_IN_FLIGHT
 * requests already waiting), -3 (no answer DRAIN seconds after the last one was due).
 * The last line is "# cpu_seconds wall_seconds schedule_seconds".
 *
 * Build: cc -O2 -o openloop openloop.c   (run.py does it in its temporary directory)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_IN_FLIGHT 2000
#define DRAIN 10.0
#define BUF 8192

enum { FREE, CONNECTING, WRITING, READING };

struct conn {
    int fd, state;
    long req;           /* index of the request */
    size_t sent, got;
    double due, start;
    char buf[BUF];
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *data;
static size_t *offs, *lens;
static long nreq;
static struct conn conns[MAX_IN_FLIGHT];
static int free_list[MAX_IN_FLIGHT], nfree;
static double *r_due, *r_lag, *r_lat;
static int *r_status;
static int epfd;
static struct sockaddr_in addr;
static long in_flight;

static void record(long i, double due, double start, double done, int status) {
    r_due[i] = due;
    r_lag[i] = start - due;
    r_lat[i] = done - (start < due ? start : due);
    r_status[i] = status;
}

static void finish(struct conn *c, int status) {
    record(c->req, c->due, c->start, now(), status);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = FREE;
    free_list[nfree++] = (int)(c - conns);
    in_flight--;
}

/* complete response in c->buf? returns the status, or 0 if more is needed */
static int complete(struct conn *c) {
    c->buf[c->got < BUF ? c->got : BUF - 1] = 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    long length = 0;
    char *p = strcasestr(c->buf, "\r\ncontent-length:");
    if (p && p < end)
        length = strtol(p + 17, NULL, 10);
    if ((size_t)(end + 4 - c->buf) + (size_t)length > c->got)
        return 0;
    return c->got > 12 ? atoi(c->buf + 9) : -1;
}

static void on_event(struct conn *c, uint32_t events) {
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { finish(c, -1); return; }
        c->state = WRITING;
    }
    if (c->state == WRITING) {
        size_t total = lens[c->req];
        while (c->sent < total) {
            ssize_t n = write(c->fd, data + offs[c->req] + c->sent, total - c->sent);
            if (n < 0) {
                if (errno == EAGAIN) return;
                finish(c, -1);
                return;
            }
            c->sent += (size_t)n;
        }
        c->state = READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    if (c->state == READING && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        for (;;) {
            if (c->got >= BUF - 1) { finish(c, -1); return; }
            ssize_t n = read(c->fd, c->buf + c->got, BUF - 1 - c->got);
            if (n < 0) {
                if (errno == EAGAIN) return;
                finish(c, -1);
                return;
            }
            if (n == 0) {
                int status = complete(c);
                finish(c, status > 0 ? status : 0);
                return;
            }
            c->got += (size_t)n;
            int status = complete(c);
            if (status) { finish(c, status); return; }
        }
    }
}

static void start_request(long i, double due) {
    if (nfree == 0) {
        double t = now();
        record(i, due, t, t, -2);
        return;
    }
    struct conn *c = &conns[free_list[--nfree]];
    c->req = i;
    c->due = due;
    c->start = now();
    c->sent = c->got = 0;
    in_flight++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        record(i, due, c->start, now(), -1);
        c->state = FREE;
        free_list[nfree++] = (int)(c - conns);
        in_flight--;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        finish(c, -1);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT RATE SECONDS REQUEST_FILE OUT_FILE\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    FILE *f = fopen(argv[4], "rb");
    if (!f) { perror(argv[4]); return 2; }
    struct stat st;
    fstat(fileno(f), &st);
    data = malloc((size_t)st.st_size + 1);
    if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) { perror("read"); return 2; }
    fclose(f);
    long planned = (long)(rate * seconds);
    offs = calloc((size_t)planned, sizeof *offs);
    lens = calloc((size_t)planned, sizeof *lens);
    size_t pos = 0;
    for (nreq = 0; nreq < planned && pos < (size_t)st.st_size; nreq++) {
        char *sep = memchr(data + pos, 0x1e, (size_t)st.st_size - pos);
        if (!sep) break;
        offs[nreq] = pos;
        lens[nreq] = (size_t)(sep - (data + pos));
        pos = (size_t)(sep - data) + 1;
    }
    if (nreq < planned) {
        fprintf(stderr, "request file has %ld requests, %ld needed\n", nreq, planned);
        return 2;
    }
    r_due = calloc((size_t)nreq, sizeof *r_due);
    r_lag = calloc((size_t)nreq, sizeof *r_lag);
    r_lat = calloc((size_t)nreq, sizeof *r_lat);
    r_status = calloc((size_t)nreq, sizeof *r_status);
    for (int k = 0; k < MAX_IN_FLIGHT; k++) free_list[nfree++] = MAX_IN_FLIGHT - 1 - k;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < MAX_IN_FLIGHT + 64 && rl.rlim_max >= MAX_IN_FLIGHT + 64) {
        rl.rlim_cur = MAX_IN_FLIGHT + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    epfd = epoll_create1(0);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now() + 0.05, last_due = t0;
    long next = 0;
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        while (next < nreq && t0 + next / rate <= t) {
            start_request(next, t0 + next / rate);
            next++;
        }
        if (next == nreq) last_due = t0 + (nreq - 1) / rate;
        if (next == nreq && (in_flight == 0 || t > last_due + DRAIN)) break;
        double wait = next < nreq ? t0 + next / rate - now() : last_due + DRAIN - now();
        if (wait < 0) wait = 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        int n = epoll_pwait2(epfd, events, 256, &ts, NULL);
        for (int k = 0; k < n; k++) on_event(events[k].data.ptr, events[k].events);
    }
    double end = now();
    for (int k = 0; k < MAX_IN_FLIGHT; k++)
        if (conns[k].state != FREE) {  /* unanswered */
            record(conns[k].req, conns[k].due, conns[k].start, end, -3);
            close(conns[k].fd);
        }
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                 (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    FILE *out = fopen(argv[5], "w");
    if (!out) { perror(argv[5]); return 2; }
    for (long i = 0; i < nreq; i++)
        fprintf(out, "%.0f %.0f %.0f %d\n", (r_due[i] - t0) * 1e6, r_lag[i] * 1e6,
                r_lat[i] * 1e6, r_status[i]);
    fprintf(out, "# %.6f %.6f %.6f\n", cpu, end - t0, last_due - t0);
    fclose(out);
    return 0;
}
